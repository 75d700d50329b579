"""The files under ``pass/`` and ``fail/`` are mypy inputs, not test modules.

`test_typing.py` type-checks both folders and runs the ``pass/`` files itself, so pytest's
``--doctest-modules`` must not import them (the ``fail/`` files would raise on import).
"""

collect_ignore_glob: list[str] = ["pass/*.py", "fail/*.py"]
