"""The exceptions a user can cause (``rtclass.errors``): one base class the CLI catches, and kinds
that callers can tell apart."""

import pytest

from rtclass import errors
from rtclass.config import from_dict
from rtclass.errors import ConfigError, InputError, ModelError, PublishError, RtclassError, StreamNotFoundError
from rtclass.probe import neuropixels


def test_every_error_is_an_rtclass_error():
    kinds = [
        v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception) and v is not RtclassError
    ]
    assert set(kinds) == {ConfigError, InputError, StreamNotFoundError, PublishError, ModelError}
    for kind in kinds:
        assert issubclass(kind, RtclassError) and kind.__doc__
    assert issubclass(RtclassError, Exception) and not issubclass(RtclassError, (ValueError, OSError))


def test_a_missing_stream_is_an_input_problem():
    assert issubclass(StreamNotFoundError, InputError)
    assert not issubclass(ConfigError, InputError) and not issubclass(PublishError, InputError)


def test_the_message_is_kept():
    with pytest.raises(RtclassError, match="check the cable") as err:
        raise StreamNotFoundError("no stream NP1; check the cable")
    assert str(err.value) == "no stream NP1; check the cable"


def test_modules_raise_these_kinds():
    with pytest.raises(ConfigError):
        from_dict({"detect": {"threshold_sd": 0.0}})
    with pytest.raises(InputError):
        neuropixels("np9")
