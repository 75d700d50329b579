"""What a scenario's cases come to: one `CaseResult` a case, an `Outcome` a scenario."""

from __future__ import annotations

import time

import attrs


@attrs.frozen
class CaseResult:
    """One case: what went wrong (nothing, ideally), whether data was lost or it hung."""

    name: str
    problems: tuple[str, ...] = ()
    lost: bool = False
    hung: bool = False
    #: Why the case could not run here (it then counts as not tried).
    skipped: str | None = None
    note: str = ""

    @property
    def survived(self) -> bool:
        return self.skipped is None and not self.problems


@attrs.frozen
class Outcome:
    """A scenario's figures: the row of the campaign table."""

    scenario: str
    tried: int
    survived: int
    data_lost: int
    hangs: int
    seconds: float
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@attrs.define
class Tally:
    """Adds `CaseResult` values up into an `Outcome`."""

    scenario: str
    started: float = attrs.field(factory=time.perf_counter)
    cases: list[CaseResult] = attrs.field(factory=list)

    def add(self, case: CaseResult) -> CaseResult:
        self.cases.append(case)
        return case

    def outcome(self) -> Outcome:
        tried = [case for case in self.cases if case.skipped is None]
        return Outcome(
            scenario=self.scenario,
            tried=len(tried),
            survived=sum(case.survived for case in tried),
            data_lost=sum(case.lost for case in tried),
            hangs=sum(case.hung for case in tried),
            seconds=time.perf_counter() - self.started,
            problems=tuple(f"{case.name}: {p}" for case in tried for p in case.problems),
            notes=tuple(
                f"{case.name}: {case.skipped or case.note}"
                for case in self.cases
                if case.skipped or case.note
            ),
        )
