"""Problems: the shared type, loaders for public benchmarks, the synthetic suite."""

from bdc_ray.problems.types import AssertTest, CallTest, Problem, StdioTest, Test

__all__ = ["AssertTest", "CallTest", "Problem", "StdioTest", "Test"]
