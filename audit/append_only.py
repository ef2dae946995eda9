"""Append-only models: rows can be inserted and read, never updated or deleted through the ORM.

Reusable by any model that is audit history (the audit log itself, connection-test runs and
their attempts). The database adds its own refusal on PostgreSQL (see the audit migrations);
this layer makes the ORM refuse loudly on every database, so a bug is caught in development.

The one sanctioned way to remove rows is retention pruning (`audit.pruning.audit_prune`),
which runs inside `pruning()` and deletes with `AppendOnlyQuerySet.prune_delete()`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any, NoReturn

from django.db import models

_PRUNING: contextvars.ContextVar[bool] = contextvars.ContextVar("audit_pruning", default=False)


class AppendOnlyError(RuntimeError):
    """An update or delete was attempted on append-only history."""


def _refuse(model: type[models.Model] | None, operation: str) -> NoReturn:
    name = model._meta.label if model is not None else "this model"
    raise AppendOnlyError(
        f"{name} is append-only history: {operation} is not allowed. Records can only be "
        "added; old ones are removed only by 'manage.py audit_prune'."
    )


@contextlib.contextmanager
def pruning() -> Iterator[None]:
    """Allow `prune_delete()` inside this block (used by the retention command only)."""
    token = _PRUNING.set(True)
    try:
        yield
    finally:
        _PRUNING.reset(token)


class AppendOnlyQuerySet(models.QuerySet):
    """A queryset whose bulk update and delete refuse instead of rewriting history."""

    def update(self, **kwargs: Any) -> NoReturn:
        _refuse(self.model, "update()")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> NoReturn:
        _refuse(self.model, "bulk_update()")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(self.model, "update_or_create()")

    def delete(self) -> NoReturn:
        _refuse(self.model, "delete()")

    delete.queryset_only = True  # type: ignore[attr-defined]

    def _update(self, values: Any) -> NoReturn:
        # The path Model.save() takes for an existing row; refused here as a second line.
        _refuse(self.model, "update")

    def _raw_delete(self, using: str | None) -> int:
        # Django's deletion collector fast-deletes through here; only pruning may.
        if not _PRUNING.get():
            _refuse(self.model, "delete")
        return super()._raw_delete(using)

    def prune_delete(self) -> int:
        """Delete these rows without cascades or signals; only inside `pruning()`."""
        if not _PRUNING.get():
            _refuse(self.model, "delete outside audit_prune")
        return self._raw_delete(self.db)


class AppendOnlyManager(models.Manager.from_queryset(AppendOnlyQuerySet)):  # type: ignore[misc]
    """Default manager of append-only models; related managers inherit its refusals."""


class AppendOnlyModel(models.Model):
    """Abstract base: `save()` inserts new rows only; `delete()` always refuses."""

    objects = AppendOnlyManager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse(type(self), "changing a saved record")
        if kwargs.get("force_update") or kwargs.get("update_fields") is not None:
            _refuse(type(self), "save(force_update/update_fields)")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse(type(self), "delete()")
