from __future__ import annotations

import pytest

from nevertrust.domain import RiskLevel
from nevertrust.pdp.conditions import request as what

from ._helpers import NOW, request


@pytest.mark.parametrize(
    ("method", "holds"), [("GET", True), ("HEAD", True), ("POST", False), ("get", False)]
)
def test_methods_holds_for_a_listed_method(method: str, holds: bool) -> None:
    assert what.methods(["GET", "HEAD"]).test(request(method=method), NOW) is holds


@pytest.mark.parametrize(
    ("patterns", "path", "holds"),
    [
        (["/admin/*"], "/admin/", True),
        (["/admin/*"], "/admin/users/1", True),  # '*' crosses '/'
        (["/admin/*"], "/admin", False),
        (["/admin/*"], "/administrator", False),
        (["/api/?"], "/api/1", True),
        (["/api/?"], "/api/12", False),
        (["/*.json"], "/a/b/c.json", True),
        (["/*.json"], "/a.json/x", False),  # the whole path must match
        (["/a[1]"], "/a[1]", True),  # brackets are plain characters
        (["/a[1]"], "/a1", False),
        (["/a.b"], "/axb", False),  # so are regex metacharacters
        (["/x", "/y/*"], "/y/z", True),
        (["/"], "/", True),
        ([], "/", False),  # an empty list matches no path
    ],
)
def test_paths_match_whole_paths_with_star_and_question_mark(
    patterns: list[str], path: str, holds: bool
) -> None:
    assert what.paths(patterns).test(request(path=path), NOW) is holds


@pytest.mark.parametrize(
    ("risk", "holds"),
    [
        (RiskLevel.LOW, True),
        (RiskLevel.MEDIUM, True),
        (RiskLevel.HIGH, False),
        (RiskLevel.CRITICAL, False),
        (None, False),  # unknown risk is not known to be low enough
    ],
)
def test_risk_max_holds_up_to_the_level(risk: RiskLevel | None, holds: bool) -> None:
    assert what.risk_max(RiskLevel.MEDIUM).test(request(risk=risk), NOW) is holds


def test_explanations_say_expected_versus_got() -> None:
    seen = request(method="DELETE", path="/admin/x", risk=RiskLevel.HIGH)
    assert what.methods(["POST", "GET"]).explain(seen, NOW) == (
        "needs a method in ['GET', 'POST']; got DELETE"
    )
    assert what.paths(["/api/*"]).explain(seen, NOW) == (
        "needs a path matching ['/api/*']; got '/admin/x'"
    )
    assert what.risk_max(RiskLevel.LOW).explain(seen, NOW) == (
        "needs risk at most low; risk is high"
    )
    assert what.risk_max(RiskLevel.LOW).explain(request(), NOW).endswith("risk is unknown")
