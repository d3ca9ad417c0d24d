"""LLM serving benchmark: the scenario `indigo-loadtest bench` generates from its flags."""

from indigo_loadtest import env
from indigo_loadtest.llm.benchmark import SPEC_ENV, BenchScenario, BenchSpec

bench = BenchScenario(BenchSpec.from_json(env[SPEC_ENV]))
options = bench.options
default = bench.iteration
