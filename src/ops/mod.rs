//! Operation specs: parameters, shape rules and validation, owned in one place and
//! asked by both the Python bindings and the backends. A backend never re-validates.

pub mod conv;
pub mod correlate;
pub mod pool;
