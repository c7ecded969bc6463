"""Register map of a generated design, read from its manifest (shared by testbench and host)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldInfo:
    name: str
    offset: int
    width: int

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.offset


class RegisterInfo:
    """One register: ``address`` (word), ``access``, and its fields as attributes."""

    def __init__(self, desc: dict):
        self.name = desc["name"]
        self.address = desc["address"]
        self.access = desc["access"]
        self.fields = {f["name"]: FieldInfo(f["name"], f["offset"], f["width"]) for f in desc["fields"]}

    def __getattr__(self, name):
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(f"register {self.__dict__.get('name')} has no field {name}") from None


class RegisterMap:
    """Registers by name, e.g. ``regs.STATUS.address`` or ``regs.CTRL.START.mask``."""

    def __init__(self, registers: list[dict]):
        self._regs = {d["name"]: RegisterInfo(d) for d in registers}

    @classmethod
    def from_manifest(cls, manifest: dict) -> "RegisterMap":
        return cls(manifest["registers"])

    def __getattr__(self, name) -> RegisterInfo:
        try:
            return self.__dict__["_regs"][name]
        except KeyError:
            raise AttributeError(f"no register {name}") from None
