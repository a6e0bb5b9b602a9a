from __future__ import annotations

import pytest

from speechrl.registry import Registry, UnknownNameError


def test_register_get_names_and_helpful_errors():
    reg: Registry = Registry("widget")

    @reg.register("alpha")
    def alpha():
        return 1

    reg.register("beta")(lambda: 2)
    assert reg.get("alpha") is alpha and reg.names() == ["alpha", "beta"] and "beta" in reg and len(reg) == 2
    with pytest.raises(UnknownNameError) as e:
        reg.get("alpah")
    assert str(e.value) == "unknown widget 'alpah'; valid: alpha, beta (did you mean 'alpha'?)"
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha")(lambda: 3)
