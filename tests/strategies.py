"""Hypothesis strategies shared by the fuzz tests."""

from hypothesis import strategies as st

#: Any JSON document (small, nested).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=25,
)
