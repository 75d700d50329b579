# Minimal stubs for the parts of scikit-learn that helios uses (no maintained stub package).
