"""The stack's image repository: a tag checked before a deploy, released images marked so that
the lifecycle keeps them, and unmarked once the history no longer names them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leanstack.config.naming import RELEASE_TAG_PREFIX, physical_name
from leanstack.deploy.common import EXIT_USAGE, DeployError, describe_error, error_code

# The protected tag a deploy adds (see protect_release) is RELEASE_TAG_PREFIX + tag; the app's ECR
# lifecycle never expires it.


def app_repository_name(stack: str) -> str:
    """The stack's own ECR repository for the app's image (created by components/app.py)."""
    return physical_name(stack, "app")


def release_tag(tag: str) -> str:
    return RELEASE_TAG_PREFIX + tag


def protect_release(ecr: Any, stack: str, tag: str) -> bool:
    """Tag the image `tag` in the stack's repository `release-<tag>` too; False when it is not there.

    Immutable tags: adding the same tag to the same image again is accepted and changes nothing.
    """
    repository = app_repository_name(stack)
    if len(release_tag(tag)) > 128:
        raise DeployError(f"tag {tag!r} is too long to mark as released: at most {128 - len(RELEASE_TAG_PREFIX)}")
    try:
        found = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except Exception as error:
        if error_code(error) == "RepositoryNotFoundException":
            return False
        raise DeployError(f"cannot read {repository}:{tag} to mark it released: {describe_error(error)}") from None
    images = found.get("images") or []
    if not images:
        return False
    image = images[0]
    options = {"imageManifestMediaType": image["imageManifestMediaType"]} if image.get("imageManifestMediaType") else {}
    try:
        ecr.put_image(
            repositoryName=repository, imageManifest=image["imageManifest"], imageTag=release_tag(tag), **options
        )
    except Exception as error:
        if error_code(error) != "ImageAlreadyExistsException":
            raise DeployError(
                f"cannot mark {repository}:{tag} released (tag {release_tag(tag)}), so its image could expire; "
                f"nothing deployed: {describe_error(error)}"
            ) from None
    return True


def prune_releases(ecr: Any, stack: str, history_tags: Callable[[], set[str]]) -> list[str]:
    """Remove the mark from released images whose tag the history no longer names; the removed tags.

    Only the tag `release-<tag>` goes (the image keeps its own tag and then falls under the
    lifecycle's count rule). Listed before the history is read, and a deploy marks its tag only
    after recording it: a mark made by a concurrent deploy is either not listed or its tag is in
    the history read, so it is never removed.
    """
    repository = app_repository_name(stack)
    marked: list[str] = []
    try:
        request: dict[str, Any] = {"repositoryName": repository, "filter": {"tagStatus": "TAGGED"}}
        while True:
            page = ecr.list_images(**request)
            marked += [
                str(i["imageTag"])
                for i in page.get("imageIds", [])
                if str(i.get("imageTag", "")).startswith(RELEASE_TAG_PREFIX)
            ]
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
    except Exception as error:
        if error_code(error) == "RepositoryNotFoundException":
            return []
        raise DeployError(f"cannot list the released images of {repository}: {describe_error(error)}") from None
    keep = {release_tag(tag) for tag in history_tags()}
    stale = sorted(set(marked) - keep)
    for start in range(0, len(stale), 100):  # BatchDeleteImage takes up to 100 ids
        try:
            ecr.batch_delete_image(
                repositoryName=repository, imageIds=[{"imageTag": t} for t in stale[start : start + 100]]
            )
        except Exception as error:
            raise DeployError(f"cannot unmark old releases in {repository}: {describe_error(error)}") from None
    return [tag[len(RELEASE_TAG_PREFIX) :] for tag in stale]


def check_tag_in_registry(ecr: Any, stack: str, tag: str) -> None:
    """The image `tag` is in the stack's repository, or bad input (nothing is sent)."""
    repository = app_repository_name(stack)
    try:
        found = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except Exception as error:
        if error_code(error) == "RepositoryNotFoundException":
            raise DeployError(
                f"tag {tag!r}: the stack's repository {repository} does not exist (has `pulumi up` run?); nothing sent",
                EXIT_USAGE,
            ) from None
        raise DeployError(f"cannot look {repository}:{tag} up: {describe_error(error)}; nothing sent") from None
    if not found.get("images"):
        raise DeployError(
            f"tag {tag!r} is not in {repository}: push the image first (or name an image from elsewhere in "
            "app.image); nothing sent",
            EXIT_USAGE,
        )
