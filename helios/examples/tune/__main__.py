"""``python -m helios.examples.tune``: run the example study (``--help`` lists the options)."""

from helios.examples.tune.run import main

if __name__ == "__main__":
    raise SystemExit(main())
