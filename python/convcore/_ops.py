"""One entry per network operation, dispatched on where the data lives: numpy arrays
go to the CPU kernels, GpuArrays to the GPU kernels (the same operation list)."""
from __future__ import annotations

import numpy as np

from . import _core
from .device import is_gpu


def conv_forward(x, w, b, strides, dilation, padding):
    f = _core.gpu_conv_forward if is_gpu(x) else _core.conv_forward
    return f(x, w, b, strides, dilation, padding)


def conv_backward(x, w, dz, strides, dilation, padding, need_dx):
    if is_gpu(x):
        return _core.gpu_conv_backward(x, w, dz, strides, dilation, padding, need_dx)
    return _core.conv_backward(x, w, np.ascontiguousarray(dz), strides, dilation, padding, need_dx)


def dense_forward(x, w, b):
    return (_core.gpu_dense_forward if is_gpu(x) else _core.dense_forward)(x, w, b)


def dense_backward(x, w, dz, need_dx):
    if is_gpu(x):
        return _core.gpu_dense_backward(x, w, dz, need_dx)
    return _core.dense_backward(x, w, np.ascontiguousarray(dz), need_dx)


def activation_forward(name, x):
    return (_core.gpu_activation_forward if is_gpu(x) else _core.activation_forward)(name, x)


def activation_backward(name, x, y, dy):
    return (_core.gpu_activation_backward if is_gpu(dy) else _core.activation_backward)(name, x, y, dy)


def dropout_forward(x, rate, seed):
    return (_core.gpu_dropout_forward if is_gpu(x) else _core.dropout_forward)(x, rate, seed)


def pool_forward(x, kind, pool, strides, padding):
    if is_gpu(x):
        return _core.gpu_pool_forward(x, kind, pool, strides, padding)
    return _core.pool_train_forward(x, kind, pool, strides, padding)


def pool_backward(dy, kind, argmax, x_shape, pool, strides, padding):
    if is_gpu(dy):
        return _core.gpu_pool_backward(dy, kind, argmax, list(x_shape), pool, strides, padding)
    return _core.pool_backward(np.ascontiguousarray(dy), kind, argmax, list(x_shape), pool, strides, padding)


def global_pool_forward(kind, x):
    """(y, cache)"""
    if is_gpu(x):
        y, am = _core.gpu_global_pool_forward(kind, x)
        return y, (list(x.shape), am)
    return _core.global_pool_forward(kind, x), x


def global_pool_backward(kind, cache, dy):
    if is_gpu(dy):
        shape, am = cache
        return _core.gpu_global_pool_backward(kind, dy, am, shape)
    return _core.global_pool_backward(kind, cache, np.ascontiguousarray(dy))


def batchnorm_forward(x, gamma, beta, eps, training, mm, mv):
    f = _core.gpu_batchnorm_forward if is_gpu(x) else _core.batchnorm_forward
    return f(x, gamma, beta, eps, bool(training), mm, mv)


def moving_update(moving, batch_value, momentum):
    """moving = moving * momentum + batch * (1 - momentum), in place."""
    if is_gpu(moving):
        _core.gpu_axpby_inplace(moving, batch_value, momentum, 1.0 - momentum)
    else:
        moving *= momentum
        moving += (1 - momentum) * batch_value


def batchnorm_backward(x, gamma, mean, var, eps, dy, training):
    if is_gpu(x):
        return _core.gpu_batchnorm_backward(x, gamma, mean, var, eps, dy, bool(training))
    return _core.batchnorm_backward(x, gamma, mean, var, eps, np.ascontiguousarray(dy))


def add_all(xs):
    if is_gpu(xs[0]):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out
    out = xs[0].copy()
    for x in xs[1:]:
        out += x
    return out


def concat_last(xs):
    return _core.gpu_concat_last(list(xs))


def slice_last(x, start, width):
    return _core.gpu_slice_last(x, start, width)
