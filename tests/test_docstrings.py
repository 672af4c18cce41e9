"""The examples in the public docstrings run and print what they claim."""
import doctest

import numpy as np
import pytest

import convcore
from convcore import ndimage, pooling, signal


@pytest.mark.parametrize("module", [convcore, signal, ndimage, pooling], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    np.set_printoptions(legacy=False)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 or module is convcore
    assert result.failed == 0
