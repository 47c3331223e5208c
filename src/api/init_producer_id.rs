//! InitProducerId for idempotent producers. As in Kafka, a non-transactional request always
//! gets a fresh producer id with epoch 0 (this also serves KIP-360 epoch bumps).

use super::errors::ResponseError;
use super::{Handled, RequestContext};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};

pub fn handle(ctx: &RequestContext, request: InitProducerIdRequest) -> Handled {
    let mut response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|t| !t.0.is_empty())
    {
        tracing::warn!(
            client_id = ctx.session.client(),
            "transactional producer refused: {}",
            super::errors::NO_TRANSACTIONS
        );
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
    } else {
        match ctx.broker.metadata.allocate_producer_id() {
            Ok(id) => {
                response.producer_id = ProducerId(id);
                response.producer_epoch = 0;
            }
            Err(e) => {
                tracing::error!(error = %e, "persisting the producer id block failed");
                response.error_code = ResponseError::KafkaStorageError.code();
            }
        }
    }
    Handled::ready(ResponseKind::InitProducerId(response))
}
