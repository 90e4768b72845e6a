"""Score fusion by stacking: member detectors' scores combined by a logistic regression.

Detectors fail differently: a spectral detector sees the periodic traces of upsampling, a
residual CNN sees local pixel correlations, a CLIP probe sees semantics. A
:class:`FusedDetector` holds several fitted member detectors (any registered detector) and learns
how much to trust each with a *stacker*:

- inputs are member **logits**, ``logit(clip(p, 1e-6, 1 - 1e-6))``, not probabilities: a
  member that saturates at 0 or 1 would otherwise squash its useful range into a corner, and
  the clip keeps one over-confident member from reaching an infinite logit;
- the logits are standardised (members speak on different scales) and an L2-penalised
  logistic regression (``C``) with balanced class weights maps them to the fused log-odds.

Fitting (``fit``) splits the training images in two, stratified by class and grouped by photo
(pass ``groups``; tiles of one photo never straddle the split): members fit on one part, the
stacker on the members' scores over the other, *held-out*, part. Stacking on scores of images a
member was trained on would teach the stacker to trust whichever member overfits most.

``refit_members=True`` then refits every member on all training images. That uses more data
for the members, but the stacker was fit on the score distributions of the smaller-data members:
a refit member is usually more confident than the one the stacker saw, so its weight is too
large. Hence the default ``False``; turn it on when members are data-starved and stable.

Evidence per image: ``fused_logit``; ``detector_scores`` ({member: probability}; the scan puts
these into ``ScanResult.detectors``); ``stacker_contributions`` ({member: log-odds it adds};
their sum plus ``stacker_intercept`` is ``fused_logit``); ``members`` ({member: its own
evidence}).

Persistence: ``config.json`` (members, hyper-parameters, the stacker's coefficients in ``state``
for people to read), ``weights.npz`` (the stacker's arrays, which are what loading uses) and
``members/<label>/``, each member saved by its own ``save`` and loaded through the registry.

Members are named by *spec*: ``"detector"`` or ``"detector:label"``; the label (default: the
detector name) keys ``member_params``, evidence, the scan's per-detector scores and the member's
folder, so one detector can appear twice with different parameters (``"spectral:coarse"``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from fakescope.detectors import Detector, create, get_detector_class, load_detector
from fakescope.detectors.base import check_images_labels
from fakescope.errors import FakescopeError, InputError, ModelError, NotFittedError

ProgressCallback = Callable[[int, int], None]

DEFAULT_MEMBERS: tuple[str, ...] = ("spectral", "npr")
MEMBERS_DIR = "members"
#: Probabilities are clipped to [EPS, 1 - EPS] before the logit: at most about +-13.8 log-odds.
EPS = 1e-6
#: Progress is reported in these units per stage, so members with and without a step count mix.
_STAGE_UNITS = 1000
# A label becomes a folder name: no separators, no leading dot, nothing that escapes members/.
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class MemberError(ModelError):
    """One member detector failed; ``label`` names it, the message says how."""

    def __init__(self, label: str, detector: str, action: str, cause: BaseException) -> None:
        self.label = label
        self.detector = detector
        message = str(getattr(cause, "message", None) or cause)
        super().__init__(
            f"fusion member {label!r} ({detector}) failed to {action}: "
            f"{type(cause).__name__}: {message}"
        )


@dataclass(frozen=True)
class MemberSpec:
    """A member: which registered detector, under which label."""

    detector: str
    label: str

    @property
    def spec(self) -> str:
        return self.detector if self.label == self.detector else f"{self.detector}:{self.label}"


def parse_members(members: str | Sequence[str]) -> list[MemberSpec]:
    """Member specs from a list (or a comma-separated string, as ``-p members=a,b`` gives)."""
    items = [part.strip() for part in members.split(",")] if isinstance(members, str) else members
    specs: list[MemberSpec] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(
                f"members must be detector names ('name' or 'name:label'), got {item!r}"
            )
        detector, _, label = item.strip().partition(":")
        label = label or detector
        if not _LABEL.match(label) or label == FusedDetector.name:
            raise ValueError(
                f"member label {label!r} must be 1-64 letters, digits, '_', '-' or '.', start "
                f"with a letter or digit, and not be {FusedDetector.name!r}"
            )
        specs.append(MemberSpec(detector, label))
    if not specs:
        raise ValueError("fusion needs at least one member detector")
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(
            f"member labels must be unique, {duplicates} repeat; name repeats 'detector:label'"
        )
    return specs


def to_logits(scores: np.ndarray) -> np.ndarray:
    """Probabilities to clipped log-odds (see the module docstring for why)."""
    return logit(np.clip(np.asarray(scores, dtype=np.float64), EPS, 1.0 - EPS))


def stacking_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (members' part, stacker's part): about ``fraction`` for the stacker.

    Stratified by label and grouped like the training pipeline's held-out split
    (:func:`fakescope.pipeline.training.split_holdout`): a group never straddles the two parts.
    """
    n_groups = len(set(groups.tolist()))
    n_splits = min(max(2, round(1 / fraction)), n_groups)
    if n_splits < 2:
        raise InputError(f"fusion needs at least 2 distinct photos to stack, have {n_groups}")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    members, stack = next(splitter.split(np.zeros(labels.size), labels, groups))
    for name, part in (("members'", members), ("stacker's", stack)):
        if np.unique(labels[part]).size < 2:
            raise InputError(
                f"fusion's {name} part of the training images has only one class "
                f"({labels.size} images in {n_groups} photo groups); add photos of each class"
            )
    return np.sort(members), np.sort(stack)


class FusedDetector(Detector):
    """Stacked fusion of member detectors: logistic regression on their standardised logits."""

    name = "fusion"

    def __init__(
        self,
        members: str | Sequence[str] = DEFAULT_MEMBERS,
        member_params: Mapping[str, Mapping[str, Any]] | None = None,
        C: float = 1.0,
        stack_fraction: float = 0.3,
        refit_members: bool = False,
        random_state: int = 0,
    ) -> None:
        self.members = members
        self.member_params = member_params
        self.C = C
        self.stack_fraction = stack_fraction
        self.refit_members = refit_members
        self.random_state = random_state

    # -- parameters --------------------------------------------------------------------------
    def member_specs(self) -> list[MemberSpec]:
        return parse_members(self.members)

    @property
    def member_labels(self) -> list[str]:
        """Labels in member order: the names under which member scores are reported."""
        return [spec.label for spec in self.member_specs()]

    def _params_for(self, spec: MemberSpec) -> dict[str, Any]:
        params = dict((self.member_params or {}).get(spec.label, {}))
        # One seed for the whole fusion: members that take a random_state inherit it unless
        # member_params sets their own.
        if "random_state" in get_detector_class(spec.detector)._get_param_names():
            params.setdefault("random_state", int(self.random_state))
        return params

    def _new_member(self, spec: MemberSpec) -> Detector:
        try:
            return create(spec.detector, **self._params_for(spec))
        except KeyError as exc:
            raise ValueError(f"fusion member {spec.label!r}: {exc.args[0]}") from exc
        except (TypeError, ValueError, ImportError) as exc:
            raise ValueError(f"fusion member {spec.label!r} ({spec.detector}): {exc}") from exc

    def check_params(self) -> None:
        specs = self.member_specs()
        params = self.member_params or {}
        if not isinstance(params, Mapping):
            raise ValueError(f"member_params must map member labels to dicts, got {params!r}")
        unknown = sorted(set(params) - {spec.label for spec in specs})
        if unknown:
            raise ValueError(
                f"member_params names {unknown}, which are not members "
                f"({', '.join(spec.label for spec in specs)})"
            )
        for label, value in params.items():
            if not isinstance(value, Mapping):
                raise ValueError(f"member_params[{label!r}] must be a dict, got {value!r}")
        for spec in specs:
            try:
                cls = get_detector_class(spec.detector)
            except KeyError as exc:
                raise ValueError(f"fusion member {spec.label!r}: {exc.args[0]}") from exc
            if issubclass(cls, FusedDetector):
                raise ValueError("a fusion cannot be a member of a fusion; list its members")
            self._new_member(spec)  # validates the member's own parameters
        if not float(self.C) > 0:
            raise ValueError(f"C must be positive, got {self.C}")
        if not 0.05 <= float(self.stack_fraction) <= 0.5:
            raise ValueError(f"stack_fraction must be in [0.05, 0.5], got {self.stack_fraction}")
        if not isinstance(self.refit_members, bool | np.bool_):
            raise ValueError(f"refit_members must be true or false, got {self.refit_members!r}")

    @property
    def min_image_side(self) -> int:  # type: ignore[override]  # depends on the members
        """The largest of the members' minimum sides: every member must be able to score."""
        fitted = getattr(self, "member_detectors_", None)
        members = (
            list(fitted.values())
            if fitted
            else [self._new_member(spec) for spec in self.member_specs()]
        )
        return max(int(member.min_image_side) for member in members)

    # -- fitting -----------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[int],
        on_progress: ProgressCallback | None = None,
        groups: Sequence[Any] | None = None,
    ) -> Self:
        """Fit members on one part of ``images``, the stacker on their scores over the rest.

        ``groups`` (photo ids, one per image) keep each photo's tiles on one side of the split;
        without them every image is its own group.
        """
        self.check_params()
        y = check_images_labels(images, labels)
        group_array = np.arange(y.size) if groups is None else np.asarray(groups).ravel()
        if group_array.size != y.size:
            raise ValueError(f"{y.size} images but {group_array.size} groups")
        member_idx, stack_idx = stacking_split(
            y, group_array, float(self.stack_fraction), int(self.random_state)
        )
        specs = self.member_specs()
        n_stages = len(specs) * (2 if self.refit_members else 1) + 1
        progress = _StageProgress(on_progress, n_stages)

        member_images = [images[i] for i in member_idx]
        fitted = {
            spec.label: self._fit_member(spec, member_images, y[member_idx], progress)
            for spec in specs
        }
        self.member_detectors_ = fitted
        stack_images = [images[i] for i in stack_idx]
        scores = self.member_scores(stack_images)
        self.fit_stacker(scores, y[stack_idx])
        progress.finish_stage()
        if self.refit_members:
            self.member_detectors_ = {
                spec.label: self._fit_member(spec, list(images), y, progress) for spec in specs
            }
        self.fit_log_ = {
            "n_member_fit": int(len(images) if self.refit_members else member_idx.size),
            "n_stacker_fit": int(stack_idx.size),
            "refit_members": bool(self.refit_members),
        }
        return self

    def _fit_member(
        self,
        spec: MemberSpec,
        images: Sequence[np.ndarray],
        labels: np.ndarray,
        progress: _StageProgress,
    ) -> Detector:
        member = self._new_member(spec)
        try:
            member.fit(images, labels, on_progress=progress.callback())
        except Exception as exc:  # name the member at fault, keep the cause chained
            raise MemberError(spec.label, spec.detector, "fit", exc) from exc
        progress.finish_stage()
        return member

    def fit_stacker(self, member_scores: np.ndarray, labels: Sequence[int]) -> Self:
        """Fit only the stacker, on member probabilities of shape (n, n_members).

        For members trained elsewhere (:meth:`from_members`): score images *none* of them was
        trained on, e.g. ``fused.fit_stacker(fused.member_scores(held_out), held_out_labels)``.
        """
        scores = np.asarray(member_scores, dtype=np.float64)
        n_members = len(self.member_specs())
        if scores.ndim != 2 or scores.shape[1] != n_members:
            raise ValueError(f"member scores must have shape (n, {n_members}), got {scores.shape}")
        y = np.asarray(labels, dtype=np.int64).ravel()
        if y.size != scores.shape[0]:
            raise ValueError(f"{scores.shape[0]} score rows but {y.size} labels")
        if not np.isin(y, (0, 1)).all() or np.unique(y).size < 2:
            raise ValueError("the stacker needs labels 0 and 1, both present")
        if not np.isfinite(scores).all():
            raise ValueError("member scores must be finite")
        z = to_logits(scores)
        mean = z.mean(axis=0)
        scale = z.std(axis=0)
        # A member constant over the stacking images carries no information: weight ~0 either
        # way, and scale 1 avoids dividing by zero.
        scale = np.where(scale > 1e-12, scale, 1.0)
        head = LogisticRegression(C=float(self.C), class_weight="balanced", max_iter=1000)
        head.fit((z - mean) / scale, y)
        self.stack_mean_ = mean
        self.stack_scale_ = scale
        self.coef_ = head.coef_.ravel().astype(np.float64)
        self.intercept_ = float(head.intercept_[0])
        return self

    @classmethod
    def from_members(
        cls,
        detectors: Sequence[Detector],
        labels: Sequence[str] | None = None,
        **params: Any,
    ) -> Self:
        """A fusion of already fitted detectors; fit its stacker with :meth:`fit_stacker`.

        Labels default to the detectors' names (repeats get ``-2``, ``-3``...). Each member's
        hyper-parameters are recorded in ``member_params``, so a clone refits the same members.
        """
        if labels is None:
            labels = _unique_labels([detector.name for detector in detectors])
        if len(labels) != len(detectors):
            raise ValueError(f"{len(detectors)} detectors but {len(labels)} labels")
        specs = [
            MemberSpec(detector.name, label).spec
            for detector, label in zip(detectors, labels, strict=True)
        ]
        member_params = {
            label: detector.get_params(deep=False)
            for detector, label in zip(detectors, labels, strict=True)
        }
        fused = cls(members=specs, member_params=member_params, **params)
        fused.check_params()
        fused.member_detectors_ = dict(zip(labels, detectors, strict=True))
        return fused

    # -- prediction --------------------------------------------------------------------------
    def _fitted_members(self) -> dict[str, Detector]:
        members = getattr(self, "member_detectors_", None)
        if members is None:
            raise NotFittedError(
                "fusion detector is not fitted; call fit(), from_members() or load()"
            )
        return members

    def _check_stacker(self) -> None:
        if getattr(self, "coef_", None) is None:
            raise NotFittedError("fusion stacker is not fitted; call fit() or fit_stacker()")

    def member_scores(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Every member's probability of *fake*, shape (n, n_members), in member order."""
        columns = []
        for spec in self.member_specs():
            member = self._fitted_members()[spec.label]
            try:
                columns.append(np.asarray(member.predict_proba(images), dtype=np.float64))
            except Exception as exc:
                raise MemberError(spec.label, spec.detector, "score", exc) from exc
        return np.stack(columns, axis=1).reshape(len(images), len(columns))

    def _fuse(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fused logits (n,), per-member contributions in log-odds (n, n_members))."""
        self._check_stacker()
        contributions = (to_logits(scores) - self.stack_mean_) / self.stack_scale_ * self.coef_
        return self.intercept_ + contributions.sum(axis=1), contributions

    def fuse_scores(self, member_scores: np.ndarray) -> np.ndarray:
        """Fused probabilities from member probabilities of shape (n, n_members).

        For evaluations that score the same images under several stackers: members score
        once (:meth:`member_scores`), each candidate fusion only re-weights.
        """
        return expit(self._fuse(np.asarray(member_scores, dtype=np.float64))[0])

    def predict_proba(self, images: Sequence[np.ndarray]) -> np.ndarray:
        self._check_stacker()
        return self.fuse_scores(self.member_scores(images))

    def explain(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        return self.predict_with_evidence(images)[1]

    def predict_with_evidence(
        self, images: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Fused scores, and per image each member's score, contribution and own evidence."""
        self._check_stacker()
        specs = self.member_specs()
        members = self._fitted_members()
        columns, member_evidence = [], []
        for spec in specs:
            try:
                scores, evidence = members[spec.label].predict_with_evidence(images)
            except Exception as exc:
                raise MemberError(spec.label, spec.detector, "score", exc) from exc
            columns.append(np.asarray(scores, dtype=np.float64))
            member_evidence.append(evidence)
        score_matrix = np.stack(columns, axis=1).reshape(len(images), len(specs))
        fused_logits, contributions = self._fuse(score_matrix)
        labels = [spec.label for spec in specs]
        evidence_rows = []
        for row in range(len(images)):
            evidence_rows.append(
                {
                    "fused_logit": round(float(fused_logits[row]), 4),
                    "stacker_intercept": round(self.intercept_, 4),
                    "detector_scores": {
                        label: round(float(score_matrix[row, j]), 6)
                        for j, label in enumerate(labels)
                    },
                    "stacker_contributions": {
                        label: round(float(contributions[row, j]), 4)
                        for j, label in enumerate(labels)
                    },
                    "members": {label: member_evidence[j][row] for j, label in enumerate(labels)},
                }
            )
        return expit(fused_logits), evidence_rows

    # -- persistence -------------------------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        self._check_stacker()
        return {
            "stack_mean": self.stack_mean_,
            "stack_scale": self.stack_scale_,
            "coef": self.coef_,
            "intercept": np.array([self.intercept_]),
        }

    def _state(self) -> dict[str, Any]:
        # For people reading config.json; loading trusts weights.npz for the numbers.
        labels = self.member_labels
        return {
            "members": [
                {"label": spec.label, "detector": spec.detector} for spec in self.member_specs()
            ],
            "coefficients": dict(zip(labels, self.coef_.tolist(), strict=True)),
            "intercept": self.intercept_,
            "fit_log": getattr(self, "fit_log_", {}),
        }

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        specs = self.member_specs()
        n_members = len(specs)
        arrays = {}
        for key, size in (
            ("stack_mean", n_members),
            ("stack_scale", n_members),
            ("coef", n_members),
            ("intercept", 1),
        ):
            value = np.asarray(weights.get(key, np.empty(0)), dtype=np.float64)
            if value.shape != (size,) or not np.isfinite(value).all():
                raise ModelError(f"fusion weights {key!r} must be {size} finite values")
            arrays[key] = value
        if not (arrays["stack_scale"] > 0).all():
            raise ModelError("fusion weights 'stack_scale' must be positive")
        recorded = [(m.get("label"), m.get("detector")) for m in state.get("members", [])]
        if recorded and recorded != [(s.label, s.detector) for s in specs]:
            raise ModelError(f"fusion state lists members {recorded}, params {self.members!r}")
        self.stack_mean_ = arrays["stack_mean"]
        self.stack_scale_ = arrays["stack_scale"]
        self.coef_ = arrays["coef"]
        self.intercept_ = float(arrays["intercept"][0])
        self.fit_log_ = dict(state.get("fit_log", {}))

    def save(self, directory: str | Path) -> Path:
        """Members first (``members/<label>/``), then the fusion's own config and weights.

        ``config.json`` is written last, so an interrupted save does not look complete.
        """
        directory = Path(directory)
        self._check_stacker()
        for spec in self.member_specs():
            self._fitted_members()[spec.label].save(directory / MEMBERS_DIR / spec.label)
        return super().save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        fused = super().load(directory)
        root = Path(directory) / MEMBERS_DIR
        members: dict[str, Detector] = {}
        for spec in fused.member_specs():
            path = root / spec.label
            # Labels are plain names (checked by parse_members); resolving also catches a
            # member folder that is a symlink leading out of the model.
            if not path.resolve().is_relative_to(root.resolve()):
                raise ModelError(f"{directory}: member folder {spec.label!r} leads outside it")
            try:
                member = load_detector(path)
            except FakescopeError as exc:
                raise ModelError(f"{directory}: fusion member {spec.label!r}: {exc}") from exc
            if member.name != spec.detector:
                raise ModelError(
                    f"{directory}: member {spec.label!r} should be a {spec.detector!r} detector, "
                    f"its folder holds {member.name!r}"
                )
            members[spec.label] = member
        fused.member_detectors_ = members
        return fused


def _unique_labels(names: Sequence[str]) -> list[str]:
    labels: list[str] = []
    for name in names:
        label, count = name, 1
        while label in labels:
            count += 1
            label = f"{name}-{count}"
        labels.append(label)
    return labels


class _StageProgress:
    """Maps each stage's own ``(step, total)`` onto one bar over all stages."""

    def __init__(self, on_progress: ProgressCallback | None, n_stages: int) -> None:
        self.on_progress = on_progress
        self.total = n_stages * _STAGE_UNITS
        self.stage = 0

    def callback(self) -> ProgressCallback | None:
        if self.on_progress is None:
            return None
        base = self.stage * _STAGE_UNITS

        def report(step: int, total: int) -> None:
            fraction = min(max(step / total, 0.0), 1.0) if total > 0 else 0.0
            self._emit(base + int(fraction * _STAGE_UNITS))

        return report

    def finish_stage(self) -> None:
        self.stage += 1
        self._emit(self.stage * _STAGE_UNITS)

    def _emit(self, done: int) -> None:
        if self.on_progress is not None:
            self.on_progress(min(done, self.total), self.total)
