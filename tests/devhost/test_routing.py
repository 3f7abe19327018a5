"""Route templates match as ASP.NET Core routing does for Functions HTTP triggers."""

from __future__ import annotations

import pytest

from devhost.routing import Router, RouteTemplate, RouteTemplateError

GUID = "6f1e0c9a-1f0b-4a48-9a56-0d0d3e0c0c0c"


def _router() -> Router[str]:
    router: Router[str] = Router()
    router.add("teams/{id}", ["GET"], "get_team")
    router.add("teams/{id:guid}/start", ["POST"], "start_team")
    router.add("teams", ["GET", "POST"], "teams")
    router.add("teams/mine", ["GET"], "my_teams")
    router.add("items/{n:int:min(1)}", None, "item_number")
    router.add("items/{name}", None, "item_name")
    router.add("{a}.{b}", None, "dotted")
    router.add("{*rest}", ["GET"], "fallback")
    return router


@pytest.mark.parametrize(
    ("method", "path", "target", "params"),
    [
        ("GET", "/teams/abc", "get_team", {"id": "abc"}),
        ("GET", "/teams/mine", "my_teams", {}),
        ("POST", f"/teams/{GUID}/start", "start_team", {"id": GUID}),
        ("GET", "/teams", "teams", {}),
        ("GET", "/items/5", "item_number", {"n": "5"}),
        ("GET", "/items/0", "item_name", {"name": "0"}),
        ("GET", "/items/99999999999", "item_name", {"name": "99999999999"}),
        ("GET", "/report.csv", "dotted", {"a": "report", "b": "csv"}),
        ("GET", "/anything/else", "fallback", {"rest": "anything/else"}),
    ],
)
def test_most_specific_template_wins(method: str, path: str, target: str, params: dict[str, str]) -> None:
    found = _router().match(method, path)
    assert (found.target, found.route_params) == (target, params)


def test_wrong_method_on_known_template_reports_allowed_methods() -> None:
    found = _router().match("DELETE", "/teams")
    assert found.target is None
    assert found.allowed == ("GET", "POST")


def test_constraint_failure_is_not_a_match() -> None:
    router: Router[str] = Router()
    router.add("teams/{id:guid}/start", ["POST"], "start_team")
    found = router.match("POST", "/teams/not-a-guid/start")
    assert (found.target, found.allowed) == (None, ())


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("a/{x?}", "/a", {}),
        ("a/{x?}", "/a/1", {"x": "1"}),
        ("a/{x=7}", "/a", {"x": "7"}),
        ("a/{x:int=7}", "/a/8", {"x": "8"}),
        ("a/{x:regex(^\\d{{3}}$)}", "/a/123", {"x": "123"}),
        ("a/{x:regex(^\\d{{3}}$)}", "/a/12", None),
        ("a/{x:length(2,3)}", "/a/abcd", None),
        ("a/{x:bool}", "/a/True", {"x": "True"}),
        ("a/{x:alpha}", "/a/ab1", None),
        ("a/{x:range(1,5)}", "/a/6", None),
        ("a/{x:long}", "/a/-9000000000", {"x": "-9000000000"}),
        ("a/{x:guid}", "/a/{" + GUID + "}", {"x": "{" + GUID + "}"}),
        ("a/{**rest}", "/a/b/c", {"rest": "b/c"}),
        ("A/B", "/a/b/", {}),
    ],
)
def test_template_features(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate.parse(template.replace("{{", "{").replace("}}", "}")).match(path) == expected


@pytest.mark.parametrize("template", ["a/{*rest}/b", "a/{x:nope}", "a/{x}/{X}", "a/{1x}", "a/{x"])
def test_invalid_templates_fail_at_startup(template: str) -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate.parse(template)
