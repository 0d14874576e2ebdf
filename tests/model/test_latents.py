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


def test_anneal_parsing_and_validation():
    anneal = jv.Anneal.coerce("1.0,0.5,20000")
    assert anneal == jv.Anneal(1.0, 0.5, 20000) and isinstance(anneal.num_iters, int)
    assert jv.Anneal.coerce(str(anneal)) == anneal
    assert jv.Anneal.coerce([2, 0.1, 1e4]) == jv.Anneal(2.0, 0.1, 10000)
    for bad, message in [("1,0.5", r"'start,end,num_iters' \(3 numbers\), got '1,0.5'"),
                         ("a,b,c", "3 numbers"),
                         ("0,0.5,10", "Anneal start must be > 0 and finite, got 0.0"),
                         ("1,-0.5,10", "Anneal end must be > 0 and finite, got -0.5"),
                         ("1,inf,10", "Anneal end must be > 0 and finite, got inf"),
                         ("1,0.5,0", "Anneal num_iters must be an integer >= 1, got 0.0"),
                         ("1,0.5,2.5", "Anneal num_iters must be an integer >= 1, got 2.5"),
                         ((1, 0.5, True), "3 numbers")]:
        with pytest.raises(ValueError, match=message):
            jv.Anneal.coerce(bad)
    with pytest.raises(ValueError, match="Anneal start must be > 0 and finite, got nan"):
        jv.Anneal(float("nan"), 0.5, 10).validated()


def test_parse_temperature_constant_or_anneal():
    from jointvae_tf.model.latents import parse_temperature

    assert parse_temperature(0.67) == 0.67 and isinstance(parse_temperature(1), float)
    assert parse_temperature("0.5") == 0.5
    assert parse_temperature("1.0,0.5,20000") == jv.Anneal(1.0, 0.5, 20000)
    assert parse_temperature([1.0, 0.5, 20000]) == jv.Anneal(1.0, 0.5, 20000)
    assert parse_temperature(jv.Anneal(1, 0.5, 3)) == jv.Anneal(1.0, 0.5, 3)
    for bad, message in [(0.0, "temperature must be > 0 and finite, got 0.0"),
                         ("nan", "temperature must be > 0 and finite, got 'nan'"),
                         ("-1", "> 0 and finite, got '-1'"),
                         ("hot", "temperature must be a number > 0 or 'start,end,num_iters' to anneal it, got 'hot'"),
                         (True, "got True"), (None, "got None"),
                         ("1,2", "3 numbers")]:
        with pytest.raises(ValueError, match=message):
            parse_temperature(bad)
