//! UpdateFeatures (`kafka-features upgrade/downgrade`): checked with the rules of Kafka's
//! FeatureControlManager against the features api_versions.rs advertises. sluice derives its
//! finalized levels from its configuration (`transaction.version` from the transaction
//! settings, `group.version` from `group.coordinator.rebalance.protocols`), so an update to the
//! level already finalized succeeds and changes nothing, and one that would change a level is
//! refused with INVALID_UPDATE_VERSION and a message naming that. Kafka's check first: ALTER
//! on the cluster, refused with a top-level CLUSTER_AUTHORIZATION_FAILED and no results.

use super::api_versions::features;
use super::{str_bytes, Handled, RequestContext};
use crate::security::Operation;
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{ResponseKind, UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::ResponseError;

const UPGRADE: i8 = 1;
const SAFE_DOWNGRADE: i8 = 2;
const UNSAFE_DOWNGRADE: i8 = 3;

/// Why this update is refused (Kafka's wording), or None when it may proceed.
fn refusal(
    node: i32,
    known: &[(&'static str, i16, i16, i16)],
    name: &str,
    level: i16,
    upgrade_type: i8,
) -> Option<String> {
    let invalid = |why: &str| {
        Some(format!(
            "Invalid update version {level} for feature {name}. {why}"
        ))
    };
    if !matches!(upgrade_type, UPGRADE | SAFE_DOWNGRADE | UNSAFE_DOWNGRADE) {
        return invalid("The controller does not support the given upgrade type.");
    }
    let feature = known.iter().find(|f| f.0 == name);
    let current = feature.map_or(0, |f| f.3);
    if level < 0 {
        return invalid("A feature version cannot be less than 0.");
    }
    // A feature this node does not know is supported at 0 only, as Kafka's DISABLED range.
    let (min, max) = feature.map_or((0, 0), |f| (f.1, f.2));
    if level < min || level > max {
        return if max == 0 {
            invalid(&format!(
                "Local controller {node} does not support this feature."
            ))
        } else {
            invalid(&format!(
                "Local controller {node} only supports versions [{min}-{max}]"
            ))
        };
    }
    if level < current && upgrade_type == UPGRADE {
        return invalid(
            "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.",
        );
    }
    if level > current && upgrade_type != UPGRADE {
        return invalid("Can't downgrade to a newer version.");
    }
    if feature.is_none() {
        return invalid(&format!("Feature {name} not found."));
    }
    if name == "metadata.version" && level < current {
        // Every metadata.version below the finalized one lacks some of its records.
        return if upgrade_type == UNSAFE_DOWNGRADE {
            Some(format!(
                "Invalid metadata.version {level}. Unsafe metadata downgrade is not supported in this version."
            ))
        } else {
            Some(format!(
                "Invalid metadata.version {level}. Refusing to perform the requested downgrade because it might delete metadata information."
            ))
        };
    }
    if level != current {
        return invalid(&format!(
            "sluice finalizes {name} at {current} from its configuration and cannot change it at runtime."
        ));
    }
    None
}

pub fn handle(ctx: &RequestContext, request: UpdateFeaturesRequest) -> Handled {
    let v = ctx.api_version;
    let known = features(&ctx.broker);
    let node = ctx.broker.config.node_id;
    if !ctx.authorize_cluster(Operation::Alter) {
        return Handled::ready(ResponseKind::UpdateFeatures(
            UpdateFeaturesResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(str_bytes("Request UpdateFeatures is not authorized."))),
        ));
    }
    // One refused update fails them all (validate_only or not); none is ever applied.
    let refused = request.feature_updates.iter().find_map(|u| {
        // v0 says downgrade with a flag; v1+ with the upgrade type.
        let upgrade_type = if v == 0 {
            if u.allow_downgrade {
                SAFE_DOWNGRADE
            } else {
                UPGRADE
            }
        } else {
            u.upgrade_type
        };
        refusal(node, &known, &u.feature, u.max_version_level, upgrade_type)
    });
    let mut response = UpdateFeaturesResponse::default();
    match refused {
        Some(why) => {
            response.error_code = ResponseError::InvalidUpdateVersion.code();
            response.error_message = Some(str_bytes(&format!(
                "The update failed for all features since the following feature had an error: {why}"
            )));
        }
        // v0-1 also answer per feature (Kafka's message for success is the error's name).
        None if v <= 1 => {
            response.results = request
                .feature_updates
                .iter()
                .map(|u| {
                    UpdatableFeatureResult::default()
                        .with_feature(u.feature.clone())
                        .with_error_code(0)
                        .with_error_message(Some(str_bytes("NONE")))
                })
                .collect();
        }
        None => {}
    }
    Handled::ready(ResponseKind::UpdateFeatures(response))
}
