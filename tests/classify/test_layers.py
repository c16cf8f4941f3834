import pytest

from rtclass.classify.layers import LayerRange, layer_at, parse_layer_ranges
from rtclass.errors import ConfigError


def test_ranges_are_parsed_in_depth_order_and_looked_up():
    ranges = parse_layer_ranges(" ML:500-900, GCL:0-450,PCL:450-500 ")
    assert ranges == (LayerRange("GCL", 0, 450), LayerRange("PCL", 450, 500), LayerRange("ML", 500, 900))
    assert [layer_at(ranges, d) for d in (0, 449.9, 450, 499, 500, 899, 900, -5)] == [
        "GCL",
        "GCL",
        "PCL",
        "PCL",
        "ML",
        "ML",
        "unknown",
        "unknown",
    ]
    assert parse_layer_ranges("") == () and layer_at((), 100.0) == "unknown"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PCL450-500", "is not NAME:from-to"),
        ("PCL:450", "is not NAME:from-to"),
        ("PCL:a-b", "is not NAME:from-to"),
        ("Purkinje:0-10", "is not one of GCL, PCL, ML"),
        ("ML:500-400", "ends before it starts"),
        ("GCL:0-460,PCL:450-500", "overlap"),
    ],
)
def test_bad_ranges_say_what_is_wrong(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_layer_ranges(text)
