"""Build the C fast path (capture records to sessions) alongside the Python package."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "botunet._meter",
            sources=["src/botunet/_meter/meter.c"],
            extra_compile_args=["-O3", "-std=c99", "-Wall", "-Wno-unused-function"],
        )
    ]
)
