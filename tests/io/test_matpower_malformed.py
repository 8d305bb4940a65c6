"""Malformed MATPOWER input is rejected with one line naming matrix, column and id.

The corpus in tests/data/malformed/matpower/ holds one defect per file; its README section
``## matpower`` gives the expected error substring of each. The other tests cover the safe
expression evaluator (:mod:`tsodso.io.mexpr`) and the MATPOWER conventions that are accepted
as given rather than refused.
"""

from __future__ import annotations

import ast
import inspect
import re
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsodso.errors import ParseError, TsodsoError, ValidationError
from tsodso.io import load, load_feeder, mexpr
from tsodso.io import matpower as mp

MALFORMED = Path(__file__).resolve().parents[1] / "data" / "malformed"
CORPUS = MALFORMED / "matpower"


def _expected() -> dict[str, str]:
    """``{file name: expected substring}`` from the README's ``## matpower`` section."""
    text = (MALFORMED / "README.md").read_text()
    section = re.split(r"^## ", text, flags=re.M)
    body = next(s for s in section if s.startswith("matpower\n"))
    return dict(re.findall(r"^- `matpower/([\w.-]+\.m)`: .*Expected: `(.+)`\s*$", body,
                           flags=re.M))


EXPECTED = _expected()

VALID = """function mpc = valid
mpc.version = '2';
mpc.baseMVA = 100;
%	bus_i	type	Pd	Qd	Gs	Bs	area	Vm	Va	baseKV	zone	Vmax	Vmin
mpc.bus = [
	1	3	0	0	0	0	1	1	0	135	1	1.1	0.9;
	2	1	90	30	0	0	1	1	0	135	1	1.1	0.9;
	3	2	0	0	0	0	1	1	0	135	1	1.1	0.9;
];
%	bus	Pg	Qg	Qmax	Qmin	Vg	mBase	status	Pmax	Pmin
mpc.gen = [
	1	0	0	300	-300	1	100	1	250	10;
	3	0	0	300	-300	1	100	1	200	10;
];
%	fbus	tbus	r	x	b	rateA	rateB	rateC	ratio	angle	status	angmin	angmax
mpc.branch = [
	1	2	0.01	0.085	0.176	250	250	250	0	0	1	-360	360;
	1	3	0.017	0.092	0.158	250	250	250	0	0	1	-360	360;
	2	3	0.039	0.17	0.358	150	150	150	0	0	1	-360	360;
];
mpc.gencost = [
	2	0	0	3	0.11	5	150;
	2	0	0	3	0.085	1.2	600;
];
"""


def _write(tmp_path: Path, text: str, name: str = "case") -> str:
    path = tmp_path / f"{name}.m"
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------------------ corpus
def test_every_corpus_file_is_documented():
    files = {p.name for p in CORPUS.glob("*.m")}
    assert files == set(EXPECTED)
    assert len(files) >= 40


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=lambda n: n[:-2])
def test_malformed_matpower_file(name):
    start = time.perf_counter()
    with pytest.raises(TsodsoError) as err:
        load(str(CORPUS / name))
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    assert EXPECTED[name] in message
    assert "\n" not in message


def test_the_valid_base_case_loads(tmp_path):
    system = load(_write(tmp_path, VALID))
    assert system.summary()["total_load_mw"] == 90.0
    assert system.grid.generators.cost_c2.tolist() == [0.11, 0.085]


# ------------------------------------------------------------------- expression evaluator
@pytest.mark.parametrize(("text", "value"), [
    ("2^3^2", 64.0),          # MATLAB's ^ is left associative
    ("-2^2", -4.0),           # unary minus binds looser than ^
    ("2^-1", 0.5),
    ("2^-2^2", 0.0625),       # (2^-2)^2
    ("-(1+2)*3", -9.0),
    ("8/2/2", 2.0),
    ("3-2-1", 0.0),
    ("1e3 + .5 + 1.", 1001.5),
    ("2.^2", 4.0),
    ("135/sqrt(3)", 135 / np.sqrt(3)),
    ("sin(acos(0.85))", np.sin(np.arccos(0.85))),
    ("-Inf", -np.inf),
    ("Inf / 1e3", np.inf),    # "no limit" survives a unit conversion, as in MATLAB
])
def test_expression_values(text, value):
    assert mexpr.evaluate(text) == pytest.approx(value, rel=1e-15)


def test_power_tower_is_left_associative_and_fast():
    start = time.perf_counter()
    assert mexpr.evaluate("9^9^9") == pytest.approx(9.0**81)  # (9^9)^9, as MATLAB gives
    with pytest.raises(ParseError, match="exceeds"):
        mexpr.evaluate("9^(9^9)")
    with pytest.raises(ParseError, match="exceeds"):
        mexpr.evaluate("10^400")
    with pytest.raises(ParseError):
        mexpr.evaluate("(-8)^(1/3)")  # complex in MATLAB
    assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize(("text", "match"), [
    ("__import__('os')", "unexpected character"),
    ("().__class__", "unexpected character"),
    ("2**3", "expected a number"),
    ("(" * 60 + "1" + ")" * 60, "nested deeper"),
    ("-" * 60 + "1", "nested deeper"),
    ("+".join(["1"] * 300), "more than 256 tokens"),
    ("1" * 3000, "longer than"),
    ("1/0", "division by zero"),
    ("0/0", "division by zero"),
    ("Inf - Inf", "not a real number"),
    ("sqrt(-1)", "not a real number"),
    ("acos(2)", "not a real number"),
    ("exp(1000)", "overflows"),
    ("1e400", "overflows"),
    ("NaN", "unknown name"),
    ("x", "unknown name 'x'"),
    ("sqrt(1, 2)", "one argument"),
    ("foo(1)", "unknown function"),
    ("1 2", "unexpected token"),
    ("[1 2] * [3 4]", "matrix product"),
    ("2 / [1 2]", "use ./"),
    ("[1 2] ^ 2", "matrix power"),
    ("[1 2] + [1 2 3]", "different sizes"),
])
def test_expressions_refused(text, match):
    with pytest.raises(ParseError, match=re.escape(match)):
        mexpr.evaluate(text)


def test_brackets_follow_matlab_whitespace_rules():
    assert mexpr.evaluate("[1 -2]").tolist() == [[1.0, -2.0]]
    assert mexpr.evaluate("[1 - 2]").tolist() == [[-1.0]]
    assert mexpr.evaluate("[1, 2 3]").tolist() == [[1.0, 2.0, 3.0]]


def test_indexing_selects_a_submatrix():
    a = np.arange(1.0, 13.0).reshape(4, 3)
    mats = {"mpc.bus": a}
    got = mexpr.evaluate("mpc.bus([1 3], [2 3]) .* 2", {}, mats)
    assert got.tolist() == [[4.0, 6.0], [16.0, 18.0]]  # not numpy's pairwise [(0,1), (2,2)]
    assert mexpr.evaluate("mpc.bus(2, 3)", {}, mats) == 6.0
    for bad in ("mpc.bus(0, 1)", "mpc.bus(5, 1)", "mpc.bus(1.5, 1)", "mpc.bus(1)"):
        with pytest.raises(ParseError):
            mexpr.evaluate(bad, {}, mats)


def test_no_python_eval_in_the_reader():
    for module in (mp, mexpr):
        tree = ast.parse(inspect.getsource(module))
        calls = {n.func.id for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not calls & {"eval", "exec", "compile"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="0123456789.+-*/^()[] ,:eEInfNapisqrtx", max_size=60))
def test_random_expressions_either_evaluate_or_raise_parse_error(text):
    try:
        value = mexpr.evaluate(text)
    except ParseError:
        return
    arr = np.asarray(value, dtype=float)
    assert not np.isnan(arr).any()
    assert (np.isinf(arr) | (np.abs(arr) <= mexpr.MAX_ABS)).all()


# ------------------------------------------------------------ statements in the case file
def test_column_updates_run_with_matlab_semantics(tmp_path):
    code = ("mpc.bus([2 3], [PD QD]) = mpc.bus([2 3], [PD QD]) * 2;\n"
            "mpc.gen(:, QMAX) = mpc.gen(:, QMAX) / 1e3;\n"
            "fixed = 0;\nif fixed\n  mpc.bus(:, PD) = 0;\nend\n")
    case = mp.read_case(_write(tmp_path, VALID + code))
    assert case.bus[:, 2].tolist() == [0.0, 180.0, 0.0]
    assert case.bus[:, 3].tolist() == [0.0, 60.0, 0.0]
    assert case.gen[:, 3].tolist() == [0.3, 0.3]


def test_case_file_arithmetic_is_matlab_not_python(tmp_path):
    code = "x = 2^3^2;\nmpc.bus(2, PD) = x;\nmpc.bus(2, QD) = -2^2 + 2^-1;\n"
    case = mp.read_case(_write(tmp_path, VALID + code))
    assert case.bus[1, 2] == 64.0  # Python's 2**3**2 is 512
    assert case.bus[1, 3] == -3.5


def test_comments_and_continuations(tmp_path):
    text = VALID.replace("mpc.gencost = [", "% mpc.dcline = [\n%   1 2 1 10 10 0 0 1 1 "
                         "0 10 -10 10 -10 10 0 0;\n% ];\n%{\nmpc.A = [1 2];\n%}\n"
                         "mpc.gencost = [")
    text = text.replace("\t2\t0\t0\t3\t0.11\t5\t150;",
                        "\t2\t0\t0\t3 ... split row\n\t0.11\t5\t150;")
    case = mp.read_case(_write(tmp_path, text))
    assert "dcline" not in case.extra and "A" not in case.extra
    assert case.gencost.shape == (2, 7)


# --------------------------------------------------------- accepted MATPOWER conventions
def test_infinite_limits_in_the_no_limit_direction_are_accepted(tmp_path):
    text = VALID.replace("\t1\t0\t0\t300\t-300\t1\t100\t1\t250\t10;",
                         "\t1\t0\t0\tInf\t-Inf\t1\t100\t1\tInf\t-Inf;")
    gens = load(_write(tmp_path, text)).grid.generators
    assert np.isinf(gens.pmax_mw[0]) and gens.pmin_mw[0] == -np.inf
    assert gens.qmax_mvar[0] == np.inf and gens.qmin_mvar[0] == -np.inf


def test_zero_rating_and_tap_keep_their_matpower_meaning(tmp_path):
    text = VALID.replace("\t250\t250\t250\t0\t0\t1\t-360\t360;\n\t1\t3",
                         "\t0\t0\t0\t0\t0\t1\t-360\t360;\n\t1\t3")
    br = load(_write(tmp_path, text)).grid.branches
    assert np.isinf(br.rate_a_mva[0]) and br.tap_ratio[0] == 1.0


def test_out_of_service_dc_line_and_descriptive_data_are_accepted(tmp_path):
    extra = ("mpc.dcline = [\n\t2\t3\t0\t10\t8.9\t0\t0\t1.01\t1\t1\t10\t-10\t10\t-10\t10\t0\t0;"
             "\n];\nmpc.areas = [1 1];\nmpc.bus_name = {'a'; 'b % not a comment'; 'c'};\n"
             "mpc.genfuel = {'coal'; 'ng'};\nmpc.bus_geo = [1 2; 3 4; 5 6];\n")
    grid = load(_write(tmp_path, VALID + extra)).grid
    assert grid.notes == ["mpc.bus_geo: not used by tsodso (MATPOWER's solvers ignore it too)"]


def test_equal_voltage_limits_are_accepted(tmp_path):
    text = VALID.replace("\t1\t3\t0\t0\t0\t0\t1\t1\t0\t135\t1\t1.1\t0.9;",
                         "\t1\t3\t0\t0\t0\t0\t1\t1\t0\t135\t1\t1\t1;")
    assert load(_write(tmp_path, text)).grid.buses.vmin_pu[0] == 1.0


def test_out_of_service_generator_limits_are_not_checked(tmp_path):
    text = VALID.replace("\t3\t0\t0\t300\t-300\t1\t100\t1\t200\t10;",
                         "\t3\t0\t0\t300\t-300\t1\t100\t0\t200\t300;")
    assert not load(_write(tmp_path, text)).grid.generators.in_service[1]


def test_quartic_with_zero_leading_coefficients_is_a_quadratic(tmp_path):
    text = VALID.replace("\t2\t0\t0\t3\t0.11\t5\t150;", "\t2\t0\t0\t5\t0\t0\t0.11\t5\t150;")
    text = text.replace("\t2\t0\t0\t3\t0.085\t1.2\t600;", "\t2\t0\t0\t2\t1.2\t600\t0\t0\t0;")
    gens = load(_write(tmp_path, text)).grid.generators
    assert gens[["cost_c2", "cost_c1", "cost_c0"]].to_numpy().tolist() == [
        [0.11, 5.0, 150.0], [0.0, 1.2, 600.0]]


# ------------------------------------------------------------------ programmatic and mutations
def test_case_to_grid_checks_a_case_built_in_code():
    case = mp.read_case("matpower:case9")
    case.bus[1, 0] = 2.5
    with pytest.raises(ValidationError, match=re.escape("mpc.bus.BUS_I[2.5]")):
        mp.case_to_grid(case)
    case = mp.read_case("matpower:case9")
    case.gen = case.gen[:, :3]
    with pytest.raises(ParseError, match="mpc.gen has 3 columns"):
        mp.case_to_grid(case)


def test_feeder_reader_refuses_instead_of_clipping(tmp_path):
    absorbing = VALID.replace("\t3\t0\t0\t300\t-300\t1\t100\t1\t200\t10;",
                              "\t3\t0\t0\t300\t-300\t1\t100\t1\t200\t-10;")
    with pytest.raises(ValidationError, match=re.escape("mpc.gen.PMIN[2]: PMIN -10 < 0")):
        load_feeder(_write(tmp_path, absorbing))  # was clipped to 0
    inverted = VALID.replace("\t1.1\t0.9;\n\t3", "\t0.9\t1.1;\n\t3")
    with pytest.raises(ValidationError, match=re.escape("mpc.bus.VMIN[2]")):
        load_feeder(_write(tmp_path, inverted))  # was replaced by the default band


def test_published_case_with_an_in_service_dc_line_is_refused():
    with pytest.raises(ValidationError, match="DC lines are not modelled"):
        load("matpower:case_RTS_GMLC")


_TOKENS = ["0", "-1", "2.5", "1e9", "-1e9", "Inf", "-Inf", "NaN", "1/0", "9^(9^9)", "x", "[",
           "]", ";", "", "1 2", "sqrt(-1)", "1e400", "4", "3"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_cases_load_or_raise_a_tsodso_error(tmp_path, data):
    words = re.split(r"(\s+)", VALID)
    numbers = [i for i, w in enumerate(words) if re.fullmatch(r"-?[\d.]+;?", w)]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.sampled_from(numbers))
        words[i] = data.draw(st.sampled_from(_TOKENS)) + (";" if words[i].endswith(";") else "")
    try:
        load(_write(tmp_path, "".join(words), "mutant"))
    except TsodsoError as err:
        assert "\n" not in str(err)
