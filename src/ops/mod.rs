//! Operation specs: parameters, shape rules and validation, owned in one place and
//! asked by both the Python bindings and the backends. A backend never re-validates.

pub mod conv;
pub mod depthwise;
pub mod correlate;
pub mod nn;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod rank;
pub mod resize;

/// `(batch, *spatial, channels)`: the channels-last layout of pooling and convolution.
pub(crate) fn channels_last_shape(batch: usize, spatial: &[usize], channels: usize) -> Vec<usize> {
    let mut s = Vec::with_capacity(spatial.len() + 2);
    s.push(batch);
    s.extend_from_slice(spatial);
    s.push(channels);
    s
}
