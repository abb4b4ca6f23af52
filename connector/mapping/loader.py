"""Mapping files -> typed, validated `Mappings`, or one `MappingError` listing every problem.

A directory holds `criteria.yaml` and `routing.yaml` (both required) and one file per CRM
(`hubspot.yaml`, later `salesforce.yaml`; each optional, at least one required). Loading reads
every file, validates each against its pydantic model, then runs the cross-file checks, and only
then raises: an admin fixing a mapping wants the whole list, each with file:line:column, the path
of the value, and a hint. `connector validate` prints exactly those issues.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Generic, Literal, Protocol, TypeVar, Union, get_args, get_origin, runtime_checkable

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from connector.errors import MappingError, MappingIssue
from connector.mapping.checks import (
    DERIVED_PERSON_FIELDS,
    check_criteria,
    check_handoff_time,
    check_hubspot,
    check_routing,
    check_salesforce,
)
from connector.mapping.conditions import known_values_hint
from connector.mapping.schema import Criteria, FieldType, HubSpotMapping, Routing, SalesforceMapping
from connector.mapping.source import Document, Loc, read_document

CRITERIA_FILE = "criteria.yaml"
ROUTING_FILE = "routing.yaml"
CRM_FILES: dict[str, type[BaseModel]] = {"hubspot.yaml": HubSpotMapping, "salesforce.yaml": SalesforceMapping}
"""One optional file per CRM, each with its checks in `_Files.check`."""

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Mappings:
    """Everything the mapping directory says, validated as a whole.

    `criteria_version` identifies the criteria a decision was made with (first 12 hex digits of
    the sha256 of criteria.yaml's bytes), so the audit trail and `simulate` can tell versions apart.
    """

    criteria: Criteria
    routing: Routing
    hubspot: HubSpotMapping | None
    criteria_version: str
    directory: Path
    salesforce: SalesforceMapping | None = None

    @property
    def crms(self) -> dict[str, BaseModel]:
        """The CRM mappings present, by CRM name ("hubspot", "salesforce")."""
        present: dict[str, BaseModel | None] = {"hubspot": self.hubspot, "salesforce": self.salesforce}
        return {name: model for name, model in present.items() if model is not None}

    @property
    def person_fields(self) -> dict[str, FieldType]:
        """The person field catalogue: canonical name -> type, as conditions read `person.<name>`."""
        present = [m for m in (self.hubspot, self.salesforce) if m is not None]
        return person_field_catalogue(present)


class _TypedField(Protocol):
    @property
    def type(self) -> FieldType: ...


@runtime_checkable
class CrmFields(Protocol):
    """What the catalogue needs from a CRM mapping: canonical field name -> spec with a `type`."""

    @property
    def fields(self) -> Mapping[str, _TypedField]: ...


def person_field_catalogue(crm_mappings: Sequence[CrmFields]) -> dict[str, FieldType]:
    """Fields mapped by the CRM files plus the derived ones (`email_domain`).

    When a second CRM file maps the same field, the first file's type is kept; a check that the
    types agree belongs next to the second CRM's checks.
    """
    catalogue: dict[str, FieldType] = {}
    for mapping in crm_mappings:
        for name, spec in mapping.fields.items():
            catalogue.setdefault(name, spec.type)
    catalogue.update(DERIVED_PERSON_FIELDS)
    return catalogue


def load_mappings(directory: Path, *, criteria_file: Path | None = None) -> Mappings:
    """Load and check the mapping directory; raise `MappingError` with every issue found.

    `criteria_file` replaces `directory/criteria.yaml` (for `simulate --criteria FILE`).
    """
    if not directory.is_dir():
        issue = MappingIssue(
            str(directory), 1, 1, "", "mapping directory not found", "pass the folder holding criteria.yaml"
        )
        raise MappingError([issue])
    files = _read_all(directory, criteria_file)
    files.check()
    issues = files.issues()
    if issues:
        raise MappingError(issues)
    # No issues means both required files validated.
    assert files.criteria.model is not None
    assert files.routing.model is not None
    return Mappings(
        criteria=files.criteria.model,
        routing=files.routing.model,
        hubspot=_as(files.crm_model("hubspot.yaml"), HubSpotMapping),
        salesforce=_as(files.crm_model("salesforce.yaml"), SalesforceMapping),
        criteria_version=hashlib.sha256(files.criteria.doc.raw).hexdigest()[:12],
        directory=directory,
    )


# --------------------------------------------------------------------------- files


@dataclass
class _Loaded(Generic[M]):
    """One file: where its values came from, and its model if it validated."""

    doc: Document
    model: M | None
    present: bool = True


@dataclass
class _Files:
    directory: Path
    criteria: _Loaded[Criteria]
    routing: _Loaded[Routing]
    crms: dict[str, _Loaded[BaseModel]] = field(default_factory=dict)
    extra: list[MappingIssue] = field(default_factory=list)

    def crm_model(self, name: str) -> BaseModel | None:
        loaded = self.crms.get(name)
        return loaded.model if loaded is not None else None

    def person_fields(self) -> dict[str, FieldType] | None:
        """The catalogue, or None while a present CRM file is invalid (its fields are unknown)."""
        mappings: list[CrmFields] = []
        for loaded in self.crms.values():
            if not loaded.present:
                continue
            if not isinstance(loaded.model, CrmFields):
                return None
            mappings.append(loaded.model)
        return person_field_catalogue(mappings) if mappings else None

    def check(self) -> None:
        """The cross-file checks, each run only when the files it reads are valid."""
        if not any(loaded.present for loaded in self.crms.values()):
            names = " or ".join(CRM_FILES)
            self.extra.append(
                MappingIssue(str(self.directory), 1, 1, "", "no CRM mapping file found", f"add {names}")
            )
        criteria = self.criteria.model
        fields = self.person_fields()
        if criteria is not None:
            check_criteria(self.criteria.doc, criteria, fields)
        if self.routing.model is not None:
            check_routing(self.routing.doc, self.routing.model, criteria, fields)
        hubspot = self.crms.get("hubspot.yaml")
        if hubspot is not None and isinstance(hubspot.model, HubSpotMapping):
            check_hubspot(hubspot.doc, hubspot.model, criteria)
        salesforce = self.crms.get("salesforce.yaml")
        if salesforce is not None and isinstance(salesforce.model, SalesforceMapping):
            hubspot_fields = (
                {name: spec.type for name, spec in hubspot.model.fields.items()}
                if hubspot is not None and isinstance(hubspot.model, HubSpotMapping)
                else None
            )
            check_salesforce(salesforce.doc, salesforce.model, criteria, hubspot_fields)
        if self.routing.model is not None:
            writes: dict[str, set[str]] = {}
            if hubspot is not None and isinstance(hubspot.model, HubSpotMapping):
                writes["hubspot_property"] = set(hubspot.model.writes)
            if salesforce is not None and isinstance(salesforce.model, SalesforceMapping):
                writes["salesforce_field"] = {
                    f for obj in salesforce.model.objects.values() for f in obj.writes
                }
            check_handoff_time(self.routing.doc, self.routing.model, writes)

    def issues(self) -> list[MappingIssue]:
        """Every issue, file by file, each file's in line order."""
        docs = [self.criteria.doc, self.routing.doc, *(loaded.doc for loaded in self.crms.values())]
        ordered = [sorted(doc.issues, key=lambda i: (i.line, i.column)) for doc in docs]
        return [issue for group in ordered for issue in group] + self.extra


def _read_all(directory: Path, criteria_file: Path | None) -> _Files:
    files = _Files(
        directory=directory,
        criteria=_load(criteria_file or directory / CRITERIA_FILE, Criteria, required=True),
        routing=_load(directory / ROUTING_FILE, Routing, required=True),
    )
    for name, model in CRM_FILES.items():
        files.crms[name] = _load(directory / name, model, required=False)
    return files


def _load(path: Path, model: type[M], *, required: bool) -> _Loaded[M]:
    file = str(path)
    if not path.is_file():
        doc = Document(file=file)
        if required:
            doc.issues.append(MappingIssue(file, 1, 1, "", "required file not found", f"create {path.name}"))
        return _Loaded(doc, None, present=False)
    doc = read_document(path, file)
    if doc.issues or doc.data is None:
        return _Loaded(doc, None)
    return _Loaded(doc, _validate(doc, model))


def _as(value: BaseModel | None, model: type[M]) -> M | None:
    return value if isinstance(value, model) else None


# --------------------------------------------------------------------------- pydantic errors


def _validate(doc: Document, model: type[M]) -> M | None:
    """The model, or None with one issue per pydantic error located in the file."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            doc.issues.append(_issue_from_error(doc, model, error))
        return None


def _issue_from_error(doc: Document, model: type[BaseModel], error: ErrorDetails) -> MappingIssue:
    loc: Loc = tuple(part for part in error["loc"] if part != "[key]")
    kind = error["type"]
    if kind == "missing":
        return doc.issue(
            loc,
            f"missing required key '{loc[-1]}'",
            _field_hint(model, loc),
            position=doc.position(loc[:-1], key=True),
        )
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _keys_at(model, loc[:-1])
        return doc.issue(loc, f"unknown key '{key}'", known_values_hint(key, valid, "valid keys"), key=True)
    message, hint = _describe_error(doc, model, loc, error)
    return doc.issue(loc, message, hint, key="[key]" in error["loc"])


def _describe_error(doc: Document, model: type[BaseModel], loc: Loc, error: ErrorDetails) -> tuple[str, str]:
    kind, value = error["type"], error.get("input")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping (key: value), found {_show(value)}", ""
    if kind == "list_type":
        return f"expected a list, found {_show(value)}", "write [a, b] or one '- item' per line"
    if kind == "literal_error":
        allowed = [str(v) for v in _literal_values(model, loc)]
        return f"{_show(value)} is not allowed here", known_values_hint(str(value), allowed, "allowed")
    if kind in ("string_type", "int_type", "int_parsing", "bool_type", "bool_parsing", "float_parsing"):
        expected = {"s": "text", "i": "a whole number", "b": "true or false", "f": "a number"}[kind[0]]
        node = doc.nodes.get(loc)
        typed = getattr(node, "value", None)
        hint = (
            f'YAML reads {typed} as {type(value).__name__}; write "{typed}"'
            if kind == "string_type" and isinstance(typed, str)
            else ""
        )
        return f"expected {expected}, found {_show(value)}", hint
    return str(error["msg"]), ""


def _show(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _annotation_at(model: type[BaseModel], loc: Loc) -> Any:
    """The type pydantic validated the value at `loc` against, following models, lists and dicts."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return None
    return annotation


def _step(annotation: Any, part: str | int) -> Any:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        steps = [_step(arg, part) for arg in get_args(annotation) if arg is not type(None)]
        return next((s for s in steps if s is not None), None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        info = annotation.model_fields.get(part)
        return info.annotation if info is not None else None
    if origin is list and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return get_args(annotation)[1]
    return None


def _keys_at(model: type[BaseModel], loc: Loc) -> list[str]:
    annotation = _annotation_at(model, loc)
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return list(candidate.model_fields)
    return []


def _literal_values(model: type[BaseModel], loc: Loc) -> list[Any]:
    annotation = _annotation_at(model, loc)
    return list(get_args(annotation)) if get_origin(annotation) is Literal else []


def _field_hint(model: type[BaseModel], loc: Loc) -> str:
    parent = _annotation_at(model, loc[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        info = parent.model_fields.get(str(loc[-1]))
        if info is not None and info.description:
            return str(info.description)
    return ""
