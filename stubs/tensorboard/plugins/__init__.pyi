# Minimal stubs for the parts of TensorBoard that helios's tests use (no maintained stub
# package): its event reader. Checked against the library by tests/test_stubs.py.
