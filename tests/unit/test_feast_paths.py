"""Feast's module paths, generated from the one list in repast/feast_paths.py: every public name
imports at every mirrored path and is the very object of our own module."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import repast
from repast.feast_paths import FEAST_PATHS

PAIRS = [(path, name, target) for path, names in FEAST_PATHS.items() for name, target in names.items()]


@pytest.mark.parametrize(("path", "name", "target"), PAIRS, ids=[f"{p}.{n}" for p, n, _ in PAIRS])
def test_every_mirrored_name_imports_as_our_own_object(path: str, name: str, target: str) -> None:
    module = importlib.import_module(path)
    owner, _, attribute = target.partition(":")
    assert getattr(module, name) is getattr(importlib.import_module(owner), attribute)
    assert name in module.__all__


def test_a_from_import_at_a_feast_path_works_in_a_fresh_interpreter() -> None:
    code = ("from repast.infra.offline_stores.file_source import FileLoggingDestination, SavedDatasetFileStorage\n"
            "from repast.data_source import PushMode\nfrom repast.feature_logging import LoggingConfig\n"
            "print(PushMode.ONLINE_AND_OFFLINE.name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ONLINE_AND_OFFLINE"


def test_a_path_feast_does_not_have_is_still_a_module_not_found_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("repast.infra.offline_stores.no_such_module")


FEAST_TYPE_NAMES = ["Invalid", "Bytes", "String", "Bool", "Int32", "Int64", "Float32", "Float64", "UnixTimestamp",
                    "Uuid", "TimeUuid", "Decimal", "PdfBytes", "ImageBytes", "Array", "Set", "Map", "Json", "Struct",
                    "PrimitiveFeastType", "ComplexFeastType", "FeastType", "ValueType"]


@pytest.mark.parametrize("name", FEAST_TYPE_NAMES)
def test_every_name_of_feasts_types_module_is_in_repast_types(name: str) -> None:
    assert hasattr(repast.types, name)


FEAST_ERRORS = ["FeatureViewNotFoundException", "EntityNotFoundException", "FeatureServiceNotFoundException",
                "DataSourceNotFoundException", "OnDemandFeatureViewNotFoundException", "ProjectNotFoundException",
                "SavedDatasetNotFound", "FeastObjectNotFoundException", "FeatureNameCollisionError",
                "RequestDataNotFoundInEntityRowsException"]


@pytest.mark.parametrize("name", FEAST_ERRORS)
def test_feast_exception_names_are_repast_errors(name: str) -> None:
    from repast import errors

    assert issubclass(getattr(errors, name), errors.RepastError)


def test_except_clause_for_a_missing_view_catches_only_missing_views(tmp_path: object) -> None:
    from repast import FeatureStore, RepoConfig
    from repast.errors import EntityNotFoundException, FeatureNotFound, FeatureViewNotFoundException

    store = FeatureStore(config=RepoConfig.model_validate(
        {"project": "p", "registry": str(tmp_path) + "/registry.db", "repo_path": tmp_path}))
    with pytest.raises(FeatureViewNotFoundException) as caught:
        store.get_feature_view("nope")
    assert isinstance(caught.value, FeatureNotFound) and not isinstance(caught.value, EntityNotFoundException)
    with pytest.raises(EntityNotFoundException):
        store.get_entity("nope")
