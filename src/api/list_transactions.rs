//! ListTransactions: the transactional ids of the coordinator, filtered by state, producer id,
//! duration (v1, KIP-994) and id pattern (v2, KIP-1152: a regular expression).

use super::{str_bytes, Handled, RequestContext};
use crate::security::{Operation, ResourceType};
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, ResponseKind,
};
use kafka_protocol::ResponseError as E;

pub fn handle(ctx: &RequestContext, request: ListTransactionsRequest) -> Handled {
    let mut response = ListTransactionsResponse::default();
    let pattern = match request.transactional_id_pattern.as_deref() {
        None | Some("") => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(_) => {
                response.error_code = E::InvalidRegularExpression.code();
                return Handled::ready(ResponseKind::ListTransactions(response));
            }
        },
    };
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let states: Vec<String> = request
        .state_filters
        .iter()
        .map(|s| s.to_string())
        .collect();
    let duration = if ctx.api_version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    let list = ctx
        .broker
        .transactions
        .list(&producer_ids, &states, duration);
    response.unknown_state_filters = list
        .unknown_state_filters
        .iter()
        .map(|s| str_bytes(s))
        .collect();
    response.transaction_states = list
        .transactions
        .into_iter()
        .filter(|t| {
            pattern
                .as_ref()
                .is_none_or(|p| p.is_match(&t.transactional_id))
        })
        // Kafka lists the ids the principal may DESCRIBE.
        .filter(|t| {
            ctx.authorize(
                Operation::Describe,
                ResourceType::TransactionalId,
                &t.transactional_id,
            )
        })
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(str_bytes(&t.transactional_id).into())
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(str_bytes(t.state))
        })
        .collect();
    Handled::ready(ResponseKind::ListTransactions(response))
}
