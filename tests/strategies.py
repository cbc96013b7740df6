"""Hypothesis strategies for tensors, names, metadata and models."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = [np.float64, np.float32, np.float16, np.int8, np.int16, np.int32, np.int64,
          np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]

shapes = hnp.array_shapes(min_dims=0, max_dims=8, min_side=0, max_side=5).filter(lambda s: np.prod(s) <= 600)


@st.composite
def arrays(draw, dtypes=DTYPES):
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(st.one_of(shapes, st.sampled_from([(), (0,), (1,), (7,), (3, 0, 2), (1, 1, 1, 1, 1, 1, 1, 1)])))
    if dtype.kind == "f":
        # any bit pattern: NaN payloads, infinities, subnormals, -0.0 must all survive
        bits = draw(hnp.arrays(np.dtype(f"u{dtype.itemsize}"), shape))
        arr = bits.view(dtype)
    else:
        arr = draw(hnp.arrays(dtype, shape))
    if draw(st.booleans()) and arr.ndim >= 2:
        arr = arr.T  # non-contiguous input
    if draw(st.booleans()) and arr.dtype.itemsize > 1:
        arr = arr.astype(arr.dtype.newbyteorder(">"))  # big-endian input
    return arr



metadata_values = st.recursive(
    st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False),
        st.booleans(),
        st.text(max_size=20),
        st.binary(max_size=20),
    ),
    lambda children: st.lists(children, max_size=4),
    max_leaves=10,
)

metadata = st.dictionaries(st.text(max_size=20), metadata_values, max_size=6)


@st.composite
def models(draw, max_layers=5):
    keys = draw(st.lists(st.text(max_size=30), max_size=max_layers, unique=True))
    return {k: draw(arrays()) for k in keys}
