//! Security below the API layer: authentication (the principal of a TLS client certificate by
//! ssl.principal.mapping.rules, SASL/PLAIN, SCRAM and OAUTHBEARER), the ACL authorizer and
//! client quotas. Knows principals, resources, ACL bindings and quota rates; no protocol message
//! types.

pub mod authorizer;
pub mod quotas;
pub mod sasl_oauthbearer;
pub mod sasl_plain;
pub mod sasl_scram;
pub mod ssl_principal;

pub use authorizer::{
    AclBindingFilter, Authorizer, Operation, PatternType, Permission, ResourceType,
};

/// Compares secrets without an early exit a timing attack could measure.
fn equal_constant_time(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
