//! Security below the API layer: authentication (the principal of a TLS client certificate by
//! ssl.principal.mapping.rules, SASL/PLAIN), the ACL authorizer and client quotas. Knows
//! principals, resources, ACL bindings and quota rates; no protocol message types.

pub mod authorizer;
pub mod quotas;
pub mod sasl_plain;
pub mod ssl_principal;

pub use authorizer::{
    AclBindingFilter, Authorizer, Operation, PatternType, Permission, ResourceType,
};
