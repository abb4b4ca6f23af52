"""CEL conditions as the lifecycle core uses them: evaluate safely, say which values were read.

Every rule kind (fit, stage, disqualifier, routing `when`) goes through `Condition`, so the trace
and the plain-language reason are built the same way everywhere and a runtime CEL error never
crashes a run: the rule counts as not matched and the error is recorded where `explain` shows it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from connector.lifecycle.compiled import compile_first
from connector.mapping.expressions import MACRO_BINDING, Expression, ExpressionError, compile_expression
from connector.model import FieldValue

_PERSON_ATTR = re.compile(r"\bperson\s*\.\s*([A-Za-z_]\w*)")
_PERSON_INDEX = re.compile(r"""\bperson\s*\[\s*["']([^"']+)["']\s*\]""")
_MEMO_SIZE = 65_536
_REGEX_FIRST_AFTER = 4_096
"""Distinct inputs after which a member with a regex shortcut is keyed on its regex results first."""
_MISSING = ("<missing>",)
_FAST = object()
"""First item of the keys `_KeyExtractor._fast_key` builds: equal to nothing else."""
# Names whose values are static configuration, not facts about the person: never worth tracing.
_STATIC_NAMES = frozenset({"lists", "person"})


@dataclass(frozen=True)
class Outcome:
    """The result of one evaluation: whether it held, what it read, and any runtime error."""

    matched: bool
    values: dict[str, FieldValue]
    error: str = ""


@dataclass(frozen=True)
class Condition:
    """A compiled condition plus what it reads, worked out once at build time.

    `reads` lists top-level names (signals, fit_score, fit_grade) and `person.<field>` accesses in
    the order the condition mentions them, so reasons read like the rule itself.
    """

    expression: Expression
    reads: tuple[str, ...]
    variables: tuple[str, ...] = ()
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    _memo: dict[Hashable, tuple[bool, str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def compile(cls, source: str) -> Condition:
        """Compile `source` (raises ExpressionError; the loader has reported it with file:line)."""
        return cls.of(compile_expression(source))

    @classmethod
    def of(cls, expression: Expression) -> Condition:
        """Wrap an already compiled expression (e.g. one the engine compiled for routing)."""
        source = expression.source
        variables = expression.variables()
        positions = {
            name: _position(source, rf"\b{re.escape(name)}\b")
            for name in variables
            if name not in _STATIC_NAMES
        }
        if "person" in variables:
            for name in _PERSON_ATTR.findall(source) + _PERSON_INDEX.findall(source):
                quoted = re.escape(name)
                pattern = rf"""\bperson\s*(\.\s*{quoted}\b|\[\s*["']{quoted}["'])"""
                positions.setdefault(f"person.{name}", _position(source, pattern))
        return cls(
            expression=expression,
            reads=tuple(sorted(positions, key=positions.__getitem__)),
            variables=tuple(variables),
            members=_member_accesses(source, variables),
        )

    @property
    def source(self) -> str:
        return self.expression.source

    def evaluate(self, context: Mapping[str, Any]) -> Outcome:
        """Evaluate against `context`; an evaluation error means "not matched", with the reason kept.

        Results are memoised on the narrowed inputs: CEL is pure, so equal inputs give equal
        results, and the binding recompiles `.matches()` regexes on every call (hundreds of
        microseconds for a title regex) while titles, domains and countries repeat across people.
        """
        values = self.values_read(context)
        narrowed = self.narrow(context)
        key = _freeze(narrowed)
        cached = self._memo.get(key)
        if cached is None:
            cached = self._run(narrowed)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = cached
        matched, error = cached
        return Outcome(matched=matched, values=values, error=error)

    def _run(self, narrowed: Mapping[str, Any]) -> tuple[bool, str]:
        try:
            return self.expression.evaluate_bool(narrowed), ""
        except ExpressionError as exc:
            return False, f"evaluation error: {exc}"

    def narrow(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """Only the part of `context` this condition reads.

        The CEL binding converts every value it is handed (about a microsecond per list item or
        map entry), so passing the whole context with all lists costs ~40 us per rule; narrowed,
        it is under one. `person`/`lists` are narrowed only when every use is `x.name` or
        `x["name"]`, so a condition that uses the map as a whole still sees all of it.
        """
        narrowed = {name: context[name] for name in self.variables if name in context}
        for name, keys in self.members.items():
            whole = narrowed.get(name)
            if isinstance(whole, Mapping):
                narrowed[name] = {key: whole[key] for key in keys if key in whole}
        return narrowed

    def values_read(self, context: Mapping[str, Any]) -> dict[str, FieldValue]:
        """The values of `reads` present in `context` (a missing one is left out, not invented)."""
        person = context.get("person")
        values: dict[str, FieldValue] = {}
        for key in self.reads:
            name = key.removeprefix("person.")
            if name != key:
                if isinstance(person, Mapping) and name in person:
                    values[key] = _plain(person[name])
            elif key in context:
                values[key] = _plain(context[key])
        return values


_MATCHES_CALL = re.compile(
    r"""\bperson\s*\.\s*([A-Za-z_]\w*)\s*\.\s*matches\s*\(\s*("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')\s*\)"""
)
_SAFE_ESCAPES = frozenset("bBdDsSwW.+*?()[]{}|^$\\/-&#'\" ")
_SHORTCUT_VAR = "_rx"


@dataclass(frozen=True)
class RegexShortcut:
    """`person.<field>.matches("<pattern>")` evaluated by Python's `re` instead of CEL's engine.

    The CEL binding recompiles a `.matches()` regex on every call (40 us for a short pattern, 380 us
    for the shipped senior-title one), and conditions on values unique per person (the email) can
    never hit a memo. For patterns in a conservative subset (no flags but a leading `(?i)`, no `$`,
    no POSIX or nested classes, only common escapes) and ASCII input, Rust's regex crate and
    Python's `re` agree (a property test holds them to it); anything else uses CEL as written. The
    rewritten condition replaces each call with a boolean variable and stays CEL.
    """

    condition: Condition
    calls: tuple[tuple[str, str, re.Pattern[str]], ...]

    def flags(self, person: Mapping[str, Any]) -> dict[str, bool] | None:
        """The call results for this person, or None when one input is not ASCII text."""
        out: dict[str, bool] = {}
        for variable, field_name, pattern in self.calls:
            value = person.get(field_name)
            if not isinstance(value, str) or not value.isascii():
                return None
            out[variable] = pattern.search(value) is not None
        return out


def python_equivalent(pattern: str) -> re.Pattern[str] | None:
    """A Python regex that matches exactly as CEL's on ASCII text, or None when unsure."""
    if not pattern.isascii() or "(?" in pattern.removeprefix("(?i)").replace("(?:", ""):
        return None
    if any(token in pattern for token in ("[:", "[[", "&&", "--", "~~")):
        return None
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if index + 1 >= len(pattern) or pattern[index + 1] not in _SAFE_ESCAPES:
                return None
            index += 2
            continue
        if char == "$":
            return None
        index += 1
    try:
        return re.compile(pattern)
    except re.error:
        return None


def regex_shortcut(expression: Expression) -> RegexShortcut | None:
    """The rewritten condition when every `.matches()` on a person field can be done in Python."""
    source = expression.source
    masked = _mask_literals(source)
    calls: list[tuple[str, str, re.Pattern[str]]] = []
    pieces: list[str] = []
    last = 0
    for match in _MATCHES_CALL.finditer(source):
        if masked[match.start()] == " ":  # inside a string literal: not a call
            continue
        try:
            pattern = compile_expression(match.group(2)).evaluate({})
        except ExpressionError:
            return None
        compiled = python_equivalent(pattern) if isinstance(pattern, str) else None
        if compiled is None:
            return None
        variable = f"{_SHORTCUT_VAR}{len(calls)}"
        calls.append((variable, match.group(1), compiled))
        pieces += [source[last : match.start()], variable]
        last = match.end()
    if not calls:
        return None
    try:
        rewritten = compile_expression("".join(pieces) + source[last:])
    except ExpressionError:
        return None
    return RegexShortcut(Condition.of(rewritten), tuple(calls))


def macro_bound_only(source: str) -> frozenset[str]:
    """Names bound by a macro (`x` in `list.exists(x, ...)`) and never read outside one.

    The CEL binding lists them among the variables, but they are not inputs: keeping them in a
    memo key would put a name no context has into it, and every lookup would miss.
    """
    masked = _mask_literals(source)
    bound: set[str] = set()
    outside = list(masked)
    for call in MACRO_BINDING.finditer(masked):
        bound.add(call.group(1))
        depth, index = 1, call.end()
        while index < len(masked) and depth:
            depth += {"(": 1, ")": -1}.get(masked[index], 0)
            index += 1
        outside[call.start() : index] = " " * (index - call.start())
    rest = "".join(outside)
    return frozenset(name for name in bound if not re.search(rf"(?<![\w.]){re.escape(name)}\b", rest))


def _mask_literals(source: str) -> str:
    """`source` with the inside of every string literal blanked (same length)."""
    chars = list(source)
    quote = ""
    index = 0
    while index < len(source):
        char = source[index]
        if quote:
            if char == "\\":
                chars[index] = " "
                if index + 1 < len(source):
                    chars[index + 1] = " "
                index += 2
                continue
            if char == quote:
                quote = ""
            else:
                chars[index] = " "
        elif char in "'\"":
            quote = char
        index += 1
    return "".join(chars)


class ConditionGroup:
    """Conditions evaluated for the bulk path: each memoised on a cheap key of exactly what it reads.

    `Condition.evaluate` freezes the narrowed context for its memo and collects the values read for
    the trace; the bulk path (`simulate`, the benchmark) needs neither, so each member gets a key
    extractor built once: the values of the top-level names it reads, the person fields it reads
    with their Python type (so CEL's 1 / 1.0 / true distinctions survive), and the identity of the
    `lists` map, which is configuration that never changes while the evaluator lives. A hit
    returns what CEL returned for the same inputs; CEL is pure, so that is what it would return.
    """

    def __init__(self, conditions: Sequence[Condition], types: Mapping[str, str] | None = None) -> None:
        """`types` (name -> "int", "double" or "string") lets plain comparisons be compiled."""
        self.conditions = tuple(conditions)
        compiled = compile_first([c.source for c in self.conditions], types) if types else None
        self._compiled = compiled[0] if compiled else None
        self.compiled_count = compiled[1] if compiled else 0
        self._keys = tuple(_KeyExtractor.of(condition) for condition in self.conditions)
        self._memos: tuple[dict[Hashable, bool], ...] = tuple({} for _ in self.conditions)
        self._shortcuts = tuple(regex_shortcut(condition.expression) for condition in self.conditions)
        self._shortcut_keys = tuple(
            _KeyExtractor.of(shortcut.condition) if shortcut is not None else None
            for shortcut in self._shortcuts
        )
        self._quick = tuple(keys.quick for keys in self._keys)
        self._regex_first = [False] * len(self.conditions)

    def holds(self, index: int, context: Mapping[str, Any]) -> bool:
        """Whether member `index` holds (an evaluation error counts as not holding).

        The memo on exactly what the condition reads is tried first: titles, domains and
        countries repeat, so most calls end there. On a miss a condition with a regex shortcut
        runs Python's `re` (its own memo keys on the match results, which also pays for values
        unique per person such as the email), anything else runs CEL; both answers are stored
        under the plain key. A member with a shortcut whose plain memo reaches
        `_REGEX_FIRST_AFTER` distinct inputs is keyed on its regex results first from then on.
        """
        memo = self._memos[index]
        key = self._keys[index].key(context)
        cached = memo.get(key)
        if cached is not None:
            return cached
        cached = self._by_regex_results(index, context)
        if cached is None:
            condition = self.conditions[index]
            cached = condition._run(condition.narrow(context))[0]
        if self._shortcuts[index] is not None and len(memo) >= _REGEX_FIRST_AFTER:
            # Inputs this varied (an email per person) rarely repeat: from now on key this member
            # on its regex results only, and stop filling the memo with keys never seen again.
            self._regex_first[index] = True
            memo.clear()
        else:
            self._remember(memo, key, cached)
        return cached

    def _by_regex_results(self, index: int, context: Mapping[str, Any]) -> bool | None:
        """The answer keyed on the member's regex results (None when it has no usable shortcut)."""
        shortcut = self._shortcuts[index]
        shortcut_key = self._shortcut_keys[index]
        person = context.get("person")
        if shortcut is None or shortcut_key is None or not isinstance(person, Mapping):
            return None
        flags = shortcut.flags(person)
        if flags is None:
            return None
        memo = self._memos[index]
        fast_key: Hashable = ("re", shortcut_key.key(context), tuple(flags.values()))
        cached = memo.get(fast_key)
        if cached is None:
            fast = shortcut.condition
            cached = fast._run({**fast.narrow(context), **flags})[0]
            self._remember(memo, fast_key, cached)
        return cached

    @staticmethod
    def _remember(memo: dict[Hashable, bool], key: Hashable, value: bool) -> None:
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = value

    def matches(self, context: Mapping[str, Any]) -> tuple[bool, ...]:
        """Whether each member holds."""
        return tuple(self._hit(index, context) for index in range(len(self.conditions)))

    def first(self, context: Mapping[str, Any]) -> int | None:
        """Index of the first member that holds, or None (later members are not evaluated).

        Members in the compiled subset run as Python (`compiled`); a name missing or of another
        type than declared sends the whole call through the memoised CEL path instead.
        """
        if self._compiled is not None:
            try:
                return self._compiled(context, self._hit)
            except (KeyError, TypeError):
                pass
        for index in range(len(self.conditions)):
            if self._hit(index, context):
                return index
        return None

    def _hit(self, index: int, context: Mapping[str, Any]) -> bool:
        """`holds`, trying the memo with the member's C-level key first (the common case).

        This runs for every rule of every person; most calls are memo hits, so the hit path is one
        getter call and one dict lookup. Anything unusual (a name missing, an unhashable value, a
        miss) goes through `holds`.
        """
        if self._regex_first[index]:
            answer = self._by_regex_results(index, context)
            if answer is not None:
                return answer
        quick = self._quick[index]
        if quick is not None:
            try:
                cached = self._memos[index].get(quick(context))
            except (KeyError, TypeError):
                cached = None
            if cached is not None:
                return cached
        return self.holds(index, context)


class _KeyExtractor:
    """Builds a condition's memo key: only what it reads, as cheaply as Python allows.

    A condition reading only top-level names (every stage rule reads signals and fit values) gets
    a C-level `itemgetter` of them; person fields add (type, value) pairs.
    """

    def __init__(
        self, top: tuple[str, ...], person_keys: tuple[str, ...] | None, reads_person: bool, reads_lists: bool
    ) -> None:
        self.top = top
        self.person_keys = person_keys
        self.reads_person = reads_person
        self.reads_lists = reads_lists
        self._getter = itemgetter(*top) if top else None
        self._only_top = self._getter is not None and not reads_person and not reads_lists
        self._fast = self._fast_key()

    @classmethod
    def of(cls, condition: Condition) -> _KeyExtractor:
        variables = set(condition.variables)
        keys = condition.members.get("person")
        return cls(
            top=tuple(
                sorted(
                    name
                    for name in variables - _STATIC_NAMES - macro_bound_only(condition.source)
                    if not name.startswith(_SHORTCUT_VAR)
                )
            ),
            person_keys=tuple(sorted(keys)) if keys is not None else None,
            reads_person="person" in variables,
            reads_lists="lists" in variables,
        )

    @property
    def quick(self) -> Callable[[Mapping[str, Any]], Hashable] | None:
        """The C-level key for the common shape (raises KeyError/TypeError otherwise); equals `key`."""
        return self._getter if self._only_top else self._fast

    def key(self, context: Mapping[str, Any]) -> Hashable:
        if self._only_top:
            # The bare getter result: one value, or a tuple of values like the general form's
            # (which, with no person or lists read, names the same inputs).
            try:
                return self._getter(context)  # type: ignore[misc,no-any-return]
            except KeyError:
                pass
        if self._fast is not None:
            try:
                return self._fast(context)
            except (KeyError, TypeError):
                pass  # a name or field missing, or `person` not a mapping: the general form below
        parts: list[Hashable] = [context.get(name, _MISSING) for name in self.top]
        if self.reads_person:
            person = context.get("person")
            if self.person_keys is not None and isinstance(person, Mapping):
                for name in self.person_keys:
                    value = person.get(name, _MISSING)
                    parts.append((type(value), value))
            else:
                parts.append(_freeze(person))
        if self.reads_lists:
            parts.append(id(context.get("lists")))
        return tuple(parts)

    def _fast_key(self) -> Callable[[Mapping[str, Any]], Hashable] | None:
        """A key built by C-level getters for the common shape: named person fields, all present.

        (_FAST, top values, person values, their types, lists identity) names the same inputs as
        the general key does (types keep 1, 1.0 and true apart); the sentinel first item keeps
        it from ever equalling a general key. Raises KeyError when a name or field is absent, and
        the general key takes over.
        """
        if not self.reads_person or not self.person_keys:
            return None
        top = self._getter
        fields = itemgetter(*self.person_keys)
        single = len(self.person_keys) == 1
        lists = self.reads_lists

        def key(context: Mapping[str, Any]) -> Hashable:
            values = fields(context["person"])
            types = type(values) if single else tuple(map(type, values))
            return (
                _FAST,
                top(context) if top is not None else None,
                values,
                types,
                id(context["lists"]) if lists else None,
            )

        return key


def _member_accesses(source: str, variables: list[str]) -> dict[str, frozenset[str]]:
    """For `person` and `lists`: the keys read, when the map is only ever accessed by key."""
    members: dict[str, frozenset[str]] = {}
    for name in _STATIC_NAMES & set(variables):
        attr = re.findall(rf"\b{name}\s*\.\s*([A-Za-z_]\w*)", source)
        index = re.findall(rf"""\b{name}\s*\[\s*["']([^"'\\]+)["']\s*\]""", source)
        if len(attr) + len(index) == len(re.findall(rf"\b{name}\b", source)):
            members[name] = frozenset(attr + index)
    return members


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in that keeps CEL's distinctions (1, 1.0 and true are different values)."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(key), _freeze(item)) for key, item in value.items())))
    if isinstance(value, list | tuple):
        return ("list", tuple(_freeze(item) for item in value))
    return (type(value).__name__, value if isinstance(value, Hashable) else repr(value))


def _position(source: str, pattern: str) -> int:
    found = re.search(pattern, source)
    return found.start() if found else len(source)


def _plain(value: Any) -> FieldValue:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def describe_values(values: Mapping[str, FieldValue], source: str) -> str:
    """`name=value (>= 2)` for every value read, with the thresholds the condition compares it to.

    The thresholds are lifted from the condition's text for display only (the decision itself is
    CEL's), so a reader sees "pricing_views_30d=3 (>= 2)" rather than having to open the YAML.
    """
    parts = []
    for name, value in values.items():
        tests = _comparisons(name, source)
        suffix = f" ({', '.join(tests)})" if tests else ""
        parts.append(f"{name}={_render(value)}{suffix}")
    return ", ".join(parts)


def _comparisons(name: str, source: str) -> list[str]:
    escaped = re.escape(name).replace(r"\.", r"\s*\.\s*")
    found = [
        f"{op} {operand}"
        for op, operand in re.findall(rf"\b{escaped}\s*(>=|<=|==|!=|>|<)\s*(-?[\w.]+|\"[^\"]*\")", source)
    ]
    found += [f"in {operand}" for operand in re.findall(rf"\b{escaped}\s+in\s+(\[[^\]]*\]|[\w.]+)", source)]
    return list(dict.fromkeys(found))


def _render(value: FieldValue) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)
