import pytest

import jointvae_tf as jv


def test_three_ways_to_say_the_same_spec():
    spec = jv.LatentSpec(continuous=10, discrete=(10,))
    assert jv.LatentSpec.parse("cont=10,disc=10") == spec
    assert jv.LatentSpec.from_dict({"cont": 10, "disc": [10]}) == spec
    assert jv.LatentSpec.from_dict(spec.to_dict()) == spec
    assert jv.LatentSpec.parse(str(spec)) == spec


def test_several_discrete_latents_and_layout():
    spec = jv.LatentSpec.parse("cont=32,disc=2,2,3")
    assert spec.discrete == (2, 2, 3)
    assert spec.latent_dim == 39
    assert spec.discrete_slices() == [slice(32, 34), slice(34, 36), slice(36, 39)]
    assert jv.LatentSpec.parse("disc=[3]") == jv.LatentSpec(0, (3,))
    assert jv.LatentSpec.parse("cont=4") == jv.LatentSpec(4, ())


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "cont=10,disc=10"),
        ("cont=ten", "'ten'"),
        ("cont=4,colour=3", "unknown key 'colour'"),
        ("cont=4,disc=1", "category count must be an integer >= 2, got '1'"),
        ("cont=0", "at least one latent"),
        ("cont=-1,disc=3", ">= 0, got '-1'"),
        ("cont=2,cont=3", "given twice"),
        ("10", "cont=10,disc=10"),
    ],
)
def test_bad_specs_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        jv.LatentSpec.parse(text)


def test_bad_dict_and_values():
    with pytest.raises(ValueError, match="unknown key"):
        jv.LatentSpec.from_dict({"cont": 3, "discrete_dims": [2]})
    with pytest.raises(ValueError, match="2.5"):
        jv.LatentSpec(continuous=2.5)
    with pytest.raises(ValueError, match="True"):
        jv.LatentSpec(continuous=True)


def test_capacity_parsing_and_validation():
    cap = jv.Capacity.coerce("0,5,25000,30")
    assert cap == jv.Capacity(0.0, 5.0, 25000, 30.0)
    assert jv.Capacity.coerce(str(cap)) == cap
    assert jv.Capacity.coerce([0, 1.1, 300000, 150]).num_iters == 300000
    for bad, message in [("0,5,25000", "4 numbers"), ("5,1,10,1", "min <= max"), ("0,5,0,30", "num_iters"),
                         ("0,5,10,-1", "gamma"), ("0,nan,10,1", "finite"), ("a,b,c,d", "4 numbers")]:
        with pytest.raises(ValueError, match=message):
            jv.Capacity.coerce(bad)


def test_max_discrete_capacity():
    import math
    assert jv.LatentSpec(2, (10, 3)).max_discrete_capacity == pytest.approx(math.log(10) + math.log(3))


def test_a_huge_latent_spec_is_refused_with_the_memory_it_would_need():
    with pytest.raises(ValueError, match=r"cont=100000000, disc=\[\] has 100000000 latent dimensions; at most 65536 "
                                         r"are supported \(training it would need about 1,234 GB\)"):
        jv.LatentSpec.parse("cont=100000000")
    assert jv.LatentSpec(65536 - 10, (10,)).latent_dim == 65536
