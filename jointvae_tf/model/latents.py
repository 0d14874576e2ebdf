"""The latent space of a JointVAE and the capacity schedules that shape it.

`LatentSpec` says how many continuous dimensions `z` and which discrete latents
`c_1, c_2, ...` (with `K_i` categories each) a model has. The latent vector the
decoder takes is laid out as in the reference code:

    [z (continuous), c_1 (K_1, one-hot or relaxed), c_2 (K_2), ...]   shape [batch, latent_dim]

`Capacity` is one capacity schedule of the paper: the target KL `C` grows
linearly from `min` to `max` over `num_iters` steps and the loss pulls the KL
towards it with weight `gamma`.

`Anneal` is a Gumbel-softmax temperature that decays exponentially from `start` to
`end` over `num_iters` steps; `parse_temperature` turns a float, an Anneal, a
3-sequence or "start,end,num_iters" into a constant or an Anneal.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable, Mapping, NamedTuple, Sequence


# The largest latent vector a JointVAE takes. Its latent-facing layers grow with it (about
# 3 * 257 weights per continuous dimension); 65,536 dimensions already need ~0.8 GB of
# training state, and more is a typo long before it is a model.
MAX_LATENT_DIM = 65536


def _as_count(value: Any, what: str, minimum: int) -> int:
    """Returns `value` as an int >= minimum, or raises a one-line ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except ValueError:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}") from None
    if number != value and not isinstance(value, str) or number < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return number


@dataclasses.dataclass(frozen=True)
class LatentSpec:
    """Continuous and discrete latent variables of a JointVAE.

    Attributes:
      continuous: number of continuous (Gaussian) dimensions, >= 0.
      discrete: category count `K_i` (>= 2) of every discrete latent.
    """

    continuous: int = 0
    discrete: tuple[int, ...] = ()

    def __post_init__(self):
        continuous = _as_count(self.continuous, "LatentSpec.continuous", 0)
        discrete = self.discrete
        if isinstance(discrete, (int, str)):
            discrete = (discrete,)
        if not isinstance(discrete, Iterable):
            raise ValueError(f"LatentSpec.discrete must be a sequence of integers >= 2, got {self.discrete!r}")
        discrete = tuple(_as_count(k, "each discrete latent's category count", 2) for k in discrete)
        if continuous == 0 and not discrete:
            raise ValueError("LatentSpec needs at least one latent: got continuous=0 and no discrete latents")
        latent_dim = continuous + sum(discrete)
        if latent_dim > MAX_LATENT_DIM:
            # Weights, gradients and Adam's two moments of the encoder heads and the decoder's input layer.
            gigabytes = 4 * 4 * 257 * (3 * continuous + 2 * sum(discrete)) / 1e9
            raise ValueError(
                f"latent spec cont={continuous}, disc={list(discrete)} has {latent_dim} latent dimensions; at most "
                f"{MAX_LATENT_DIM} are supported (training it would need about {gigabytes:,.0f} GB)"
            )
        object.__setattr__(self, "continuous", continuous)
        object.__setattr__(self, "discrete", discrete)

    @classmethod
    def parse(cls, text: str) -> "LatentSpec":
        """Parses `"cont=10,disc=10"`; several discrete latents as `"cont=32,disc=2,2,2"`.

        Keys are `cont`/`continuous` and `disc`/`discrete`; a number without a
        key belongs to the key before it.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"latent spec must look like 'cont=10,disc=10', got {text!r}")
        values: dict[str, list[str]] = {}
        key = None
        for token in re.split(r"[,;\s]+", text.strip().strip("{}")):
            if not token:
                continue
            if "=" in token:
                key, token = (part.strip() for part in token.split("=", 1))
                key = {"continuous": "cont", "discrete": "disc"}.get(key, key)
                if key not in ("cont", "disc"):
                    raise ValueError(f"unknown key {key!r} in latent spec {text!r}: allowed keys are cont and disc")
                if key in values:
                    raise ValueError(f"key {key!r} given twice in latent spec {text!r}")
                values[key] = []
            elif key is None:
                raise ValueError(f"latent spec must look like 'cont=10,disc=10', got {text!r}")
            token = token.strip("[]()")
            if token:
                values[key].append(token)
        cont = values.get("cont", ["0"])
        if len(cont) != 1:
            raise ValueError(f"'cont' takes one number in latent spec {text!r}, got {cont}")
        return cls(continuous=cont[0], discrete=tuple(values.get("disc", [])))

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> "LatentSpec":
        """From `{"cont": 10, "disc": [10]}` (the reference's specs.json) or `to_dict()` output."""
        if isinstance(config, LatentSpec):
            return config
        if not isinstance(config, Mapping):
            raise ValueError(f"latent spec must be a dict like {{'cont': 10, 'disc': [10]}}, got {config!r}")
        aliases = {"continuous": "cont", "discrete": "disc"}
        unknown = [k for k in config if aliases.get(k, k) not in ("cont", "disc")]
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in latent spec {dict(config)!r}: allowed keys are cont and disc")
        normal = {aliases.get(k, k): v for k, v in config.items()}
        return cls(continuous=normal.get("cont", 0), discrete=tuple(normal.get("disc", ()) or ()))

    @classmethod
    def coerce(cls, value: "LatentSpec | str | Mapping[str, Any]") -> "LatentSpec":
        """Accepts a LatentSpec, a string for `parse` or a dict for `from_dict`."""
        if isinstance(value, LatentSpec):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        return cls.from_dict(value)

    def to_dict(self) -> dict[str, Any]:
        return {"cont": self.continuous, "disc": list(self.discrete)}

    def __str__(self) -> str:
        disc = ",".join(str(k) for k in self.discrete)
        return f"cont={self.continuous}" + (f",disc={disc}" if disc else "")

    @property
    def num_discrete(self) -> int:
        return len(self.discrete)

    @property
    def discrete_dim(self) -> int:
        """Width of all one-hot parts together: sum of K_i."""
        return sum(self.discrete)

    @property
    def latent_dim(self) -> int:
        """Width of the decoder's input `[z, c_1, ..., c_n]`."""
        return self.continuous + self.discrete_dim

    @property
    def max_discrete_capacity(self) -> float:
        """sum(log K_i): the largest KL a set of categoricals can have to uniform priors."""
        return float(sum(math.log(k) for k in self.discrete))

    def discrete_slices(self) -> list[slice]:
        """Slices of the latent vector holding each discrete latent's one-hot part."""
        slices, start = [], self.continuous
        for k in self.discrete:
            slices.append(slice(start, start + k))
            start += k
        return slices


def _numbers(value: "str | Sequence[float]", count: int, expected: str) -> list[float]:
    """`count` floats from "a,b,..." or a sequence; else a ValueError `expected (count numbers), got value`."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        parts = list(parts)
        if len(parts) != count or any(isinstance(p, bool) for p in parts):
            raise ValueError
        return [float(p) for p in parts]
    except (TypeError, ValueError):
        raise ValueError(f"{expected} ({count} numbers), got {value!r}") from None


class Capacity(NamedTuple):
    """A capacity schedule: C(t) = min(max, min + (max - min) * t / num_iters), weighted by gamma."""

    min: float
    max: float
    num_iters: int
    gamma: float

    @classmethod
    def coerce(cls, value: "Capacity | str | Sequence[float]") -> "Capacity":
        """Accepts a Capacity, a sequence `(min, max, num_iters, gamma)` or the string "min,max,num_iters,gamma"."""
        if isinstance(value, Capacity):
            return value.validated()
        low, high, num_iters, gamma = _numbers(value, 4, "capacity must be 'min,max,num_iters,gamma'")
        return cls(low, high, int(num_iters), gamma).validated()

    def validated(self) -> "Capacity":
        if not all(math.isfinite(v) for v in (self.min, self.max, self.gamma)):
            raise ValueError(f"capacity values must be finite, got {tuple(self)}")
        if self.min < 0 or self.max < self.min:
            raise ValueError(f"capacity needs 0 <= min <= max, got min={self.min}, max={self.max}")
        if int(self.num_iters) != self.num_iters or self.num_iters < 1:
            raise ValueError(f"capacity num_iters must be an integer >= 1, got {self.num_iters!r}")
        if self.gamma < 0:
            raise ValueError(f"capacity gamma must be >= 0, got {self.gamma}")
        return Capacity(float(self.min), float(self.max), int(self.num_iters), float(self.gamma))

    def __str__(self) -> str:
        return f"{self.min:g},{self.max:g},{self.num_iters},{self.gamma:g}"


class Anneal(NamedTuple):
    """An exponentially annealed temperature: T(t) = start * (end / start) ** (min(t, num_iters) / num_iters).

    T falls (or rises) geometrically from `start` at t = 0 to `end` at t = num_iters and is
    held at `end` after; t is the training step the capacity schedules use.
    `losses.temperature_value` evaluates it.
    """

    start: float
    end: float
    num_iters: int

    @classmethod
    def coerce(cls, value: "Anneal | str | Sequence[float]") -> "Anneal":
        """Accepts an Anneal, a sequence `(start, end, num_iters)` or the string "start,end,num_iters"."""
        if isinstance(value, Anneal):
            return value.validated()
        return cls(*_numbers(value, 3, "temperature annealing must be 'start,end,num_iters'")).validated()

    def validated(self) -> "Anneal":
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value > 0):
                raise ValueError(f"Anneal {name} must be > 0 and finite, got {value!r}")
        n = self.num_iters
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n) or int(n) != n or n < 1:
            raise ValueError(f"Anneal num_iters must be an integer >= 1, got {n!r}")
        return Anneal(float(self.start), float(self.end), int(n))

    def __str__(self) -> str:
        return f"{self.start:g},{self.end:g},{self.num_iters}"


def parse_temperature(value: "float | Anneal | str | Sequence[float]") -> "float | Anneal":
    """A Gumbel-softmax temperature: a constant float, or an `Anneal` schedule.

    Accepts a number (0.67) or its string ("0.67") for a constant, and an Anneal, a
    3-sequence or the string "start,end,num_iters" (e.g. "1.0,0.5,20000") for a schedule.

    Raises:
      ValueError: one line naming the value and what is allowed.
    """
    if isinstance(value, Anneal) or (isinstance(value, str) and "," in value) or (
            isinstance(value, Sequence) and not isinstance(value, str)):
        return Anneal.coerce(value)
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise ValueError(f"temperature must be a number > 0 or 'start,end,num_iters' to anneal it, got {value!r}")
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"temperature must be > 0 and finite, got {value!r}")
    return float(number)
