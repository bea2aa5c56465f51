import pytest

from neurotwin_db.catalog import Catalog, Filters, build_catalog
from neurotwin_db.errors import CatalogError, DatasetNotFoundError, QueryError

KNOWN = ("known: eeg-rest, eeg-rest-shared, mouse-ephys, mri-dicom, mri-template, "
         "mri-template-shared, tacs-home, tms-eeg")


@pytest.fixture(scope="module")
def catalog(demo_db):
    return Catalog(demo_db / ".ntdb" / "catalog")


def test_filters_combine(catalog):
    rows = catalog.search(Filters(modality=("eeg",), sub=("sub-01", "02"), suffix=("eeg",)))
    assert {r["sub"] for r in rows} == {"01", "02"}
    assert {r["extension"] for r in rows} == {".edf", ".json"}
    assert catalog.search(Filters(modality=("rodent",), sub=("01",))) == []


def test_derivative_filter(catalog):
    rows = catalog.search(Filters(derivative=("ntdb-tissue",), suffix=("probseg",),
                                  extension=(".nii.gz",)))
    assert [(r["dataset"], r["path"].rsplit("_", 2)[-2]) for r in rows] == [
        ("mri-template", "label-GM"), ("mri-template", "label-WM"),
        ("mri-template-shared", "label-GM"), ("mri-template-shared", "label-WM")]


@pytest.mark.parametrize("sql", [
    "INSERT INTO files (path) VALUES ('x')",
    "DELETE FROM files",
    "CREATE TABLE x AS SELECT 1",
    "COPY files TO '/tmp/leak.csv'",
    "SELECT 1; DROP TABLE files",
    "ATTACH '/tmp/other.duckdb'",
])
def test_sql_that_writes_is_refused(catalog, sql):
    with pytest.raises(QueryError, match="read-only"):
        catalog.sql(sql)
    assert catalog.sql("SELECT count(*) AS n FROM files")[0]["n"] > 0


def test_sql_cannot_reach_the_file_system(catalog):
    with pytest.raises(QueryError, match="failed"):
        catalog.sql("SELECT * FROM read_csv('/etc/passwd')")


def test_sql_select_works(catalog):
    rows = catalog.sql("SELECT dataset, count(*) AS n FROM files GROUP BY 1 ORDER BY 1")
    assert [r["dataset"] for r in rows] == ["eeg-rest", "eeg-rest-shared", "mouse-ephys",
                                            "mri-dicom", "mri-template", "mri-template-shared",
                                            "tacs-home", "tms-eeg"]


def test_summary(catalog):
    info = catalog.summary("eeg-rest")
    assert info["participants"] == 3 and info["tasks"] == ["rest"]
    with pytest.raises(DatasetNotFoundError, match=KNOWN):
        catalog.summary("nope")


def test_missing_catalog_says_how_to_build(tmp_path):
    with pytest.raises(CatalogError, match="ntdb catalog build"):
        Catalog(tmp_path / ".ntdb" / "catalog")


def test_doi_search_finds_datasets_and_citing_derivatives(plain_bids):
    import json

    desc = plain_bids / "dataset_description.json"
    desc.write_text(json.dumps({**json.loads(desc.read_text()),
                                "DatasetDOI": "doi:10.1234/RAW.1"}))
    deriv = plain_bids / "derivatives" / "pipe"
    (deriv / "sub-01" / "anat").mkdir(parents=True)
    (deriv / "dataset_description.json").write_text(json.dumps({
        "Name": "p", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "pipe"}],
        "SourceDatasets": [{"URL": "bids::", "DOI": "doi:10.9999/source.2"}]}))
    (deriv / "sub-01" / "anat" / "sub-01_desc-brain_mask.nii.gz").write_bytes(b"x")
    build_catalog(plain_bids)
    catalog = Catalog(plain_bids / ".ntdb" / "catalog")
    cited = catalog.search(Filters(doi=("https://doi.org/10.9999/SOURCE.2",)))
    assert {r["pipeline"] for r in cited} == {"pipe"} and len(cited) == 2
    own = catalog.search(Filters(doi=("10.1234/raw.1",)))
    assert len(own) > len(cited)


def test_unknown_dataset_or_pipeline_is_named(catalog):
    with pytest.raises(QueryError, match=KNOWN):
        catalog.search(Filters(dataset=("nope",)))
    known = "known: ntdb-efield, ntdb-headmodel, ntdb-nmm, ntdb-tissue, ntdb-twin"
    with pytest.raises(QueryError, match=known):
        catalog.search(Filters(derivative=("fmriprep",)))


def test_filter_labels_are_checked():
    from neurotwin_db.errors import EntityError

    with pytest.raises(EntityError, match="escape"):
        Filters(sub=("../x",)).checked()
