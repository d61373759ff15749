"""The few GitHub REST calls the bot makes, over httpx. ``api_url`` is
``https://api.github.com`` or a GitHub Enterprise ``https://HOST/api/v3``."""

from __future__ import annotations

from typing import Any

import httpx

USER_AGENT = "swescale-ci"
API_VERSION = "2022-11-28"


class GitHubError(RuntimeError):
    """A request GitHub refused or could not answer; ``status`` is None for no answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _explain(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(data, dict):
        return str(data)[:300]
    message = str(data.get("message", ""))
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        details = [
            e.get("message") or e.get("code") or str(e) if isinstance(e, dict) else str(e)
            for e in errors
        ]
        message += " (" + "; ".join(str(d) for d in details) + ")"
    return message or response.text[:300]


class GitHubClient:
    def __init__(
        self,
        repo: str,
        token: str,
        api_url: str = "https://api.github.com",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if repo.count("/") != 1:
            raise ValueError(f"repository {repo!r} is not owner/name")
        self.repo = repo
        self._http = httpx.Client(
            base_url=api_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
            },
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise GitHubError(f"{method} {path}: no answer from GitHub ({exc})") from exc
        if response.status_code >= 400:
            raise GitHubError(
                f"{method} {path}: {response.status_code} {_explain(response)}",
                response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise GitHubError(f"{method} {path}: the answer is not JSON") from exc

    def create_pull_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/pulls``; returns GitHub's pull request object."""
        return self._request("POST", f"/repos/{self.repo}/pulls", json=payload)

    def create_issue_comment(self, issue_number: int, body: str) -> dict[str, Any]:
        """``POST /repos/{owner}/{repo}/issues/{n}/comments``."""
        return self._request(
            "POST", f"/repos/{self.repo}/issues/{issue_number}/comments", json={"body": body}
        )

    def list_issue_comments(self, issue_number: int, limit: int = 100) -> list[dict[str, Any]]:
        """``GET /repos/{owner}/{repo}/issues/{n}/comments``: the first ``limit`` comments,
        oldest first (one page; an issue with more has said enough)."""
        found = self._request(
            "GET",
            f"/repos/{self.repo}/issues/{issue_number}/comments",
            params={"per_page": min(max(limit, 1), 100)},
        )
        return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []

    def find_open_pull_request(self, head_branch: str) -> dict[str, Any] | None:
        """The open pull request from ``head_branch`` of this repository, if any (a rerun
        updates the branch of the existing one instead of opening a second)."""
        owner = self.repo.split("/")[0]
        found = self._request(
            "GET",
            f"/repos/{self.repo}/pulls",
            params={"head": f"{owner}:{head_branch}", "state": "open"},
        )
        return found[0] if isinstance(found, list) and found else None
