"""Catalog loading and validation: CSV, JSONL, the Instacart layout and the demo catalog."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from storefront_sdk import (
    Catalog,
    CatalogError,
    ConfigurationError,
    KeywordTaxonomy,
    StorefrontError,
)
from storefront_sdk.text import tokenize


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# -- the demo catalog -------------------------------------------------------------------------


def test_demo_catalog_is_a_grocery_store(demo_catalog: Catalog) -> None:
    assert len(demo_catalog) >= 1000
    assert {
        "produce", "dairy eggs", "bakery", "meat seafood", "frozen", "pantry", "snacks",
        "beverages", "breakfast", "deli", "household", "personal care", "babies", "pets", "alcohol",
    } <= set(demo_catalog.departments)  # fmt: skip
    assert len(demo_catalog.aisles) >= 50
    per_aisle = Counter(p.aisle for p in demo_catalog)
    assert min(per_aisle.values()) >= 10, per_aisle.most_common()[-3:]
    assert all(p.price is not None and p.price > 0 for p in demo_catalog)
    assert all(p.popularity > 0 for p in demo_catalog)
    assert len({p.title for p in demo_catalog}) == len(demo_catalog), "titles are unique"


def test_demo_catalog_titles_share_retrievable_words(demo_catalog: Catalog) -> None:
    token_counts = Counter(t for p in demo_catalog for t in set(tokenize(p.title)))
    for word in ("pasta", "cheese", "yogurt", "organic", "chicken", "chocolate"):
        assert token_counts[word] >= 15, (word, token_counts[word])
    taxonomy = KeywordTaxonomy.from_catalog(demo_catalog)
    assert {"pasta", "cheese", "greek yogurt", "pasta sauce", "beer", "red wine"} <= set(taxonomy)


def test_demo_alcohol_is_marked_age_restricted(demo_catalog: Catalog) -> None:
    alcohol = [p for p in demo_catalog if p.department == "alcohol"]
    assert {p.aisle for p in alcohol} >= {"beer", "red wine", "white wine sparkling"}
    assert all(p.attributes.get("age_restricted") == "21+" for p in alcohol)
    assert not any(
        "age_restricted" in p.attributes for p in demo_catalog if p.department != "alcohol"
    )


def test_demo_catalog_is_cached_and_has_a_version(demo_catalog: Catalog) -> None:
    assert Catalog.demo() is demo_catalog
    assert demo_catalog.name == "demo"
    assert len(demo_catalog.version) == 16
    first = demo_catalog.products[0]
    assert demo_catalog[first.id] is first and first.id in demo_catalog


# -- CSV --------------------------------------------------------------------------------------


def test_from_csv_reads_optional_fields_and_attributes(tmp_path: Path) -> None:
    path = write(
        tmp_path / "shop.csv",
        "id,title,department,aisle,brand,price,popularity,attr_size,attr_Colour,notes\n"
        "A1, Organic Whole Milk ,dairy eggs,milk,Meadow Crest,4.99,120,half gallon,,ignored\n"
        "\n"
        "A2,Sourdough Sandwich Loaf,bakery,bread,,,,1 loaf,brown,\n",
    )
    catalog = Catalog.from_csv(path)
    assert catalog.name == "shop"
    milk, bread = catalog["A1"], catalog["A2"]
    assert milk.title == "Organic Whole Milk"
    assert (milk.brand, milk.price, milk.popularity) == ("Meadow Crest", 4.99, 120.0)
    assert milk.attributes == {"size": "half gallon"}
    assert (bread.brand, bread.price, bread.popularity) == (None, None, 0.0)
    assert bread.attributes == {"size": "1 loaf", "Colour": "brown"}


def test_from_csv_accepts_instacart_style_aliases_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_bytes(b"\xef\xbb\xbfProduct_ID,Product_Name\n1,Chocolate Sandwich Cookies\n2,Salt\n")
    catalog = Catalog.from_csv(path)
    assert [p.id for p in catalog] == ["1", "2"]
    assert catalog["1"].title == "Chocolate Sandwich Cookies"


def test_csv_and_jsonl_round_trip(demo_catalog: Catalog, tmp_path: Path) -> None:
    demo_catalog.to_csv(tmp_path / "demo.csv")
    demo_catalog.to_jsonl(tmp_path / "demo.jsonl")
    from_csv = Catalog.from_csv(tmp_path / "demo.csv")
    from_jsonl = Catalog.from_jsonl(tmp_path / "demo.jsonl")
    assert from_csv.products == demo_catalog.products
    assert from_jsonl.products == demo_catalog.products
    assert from_csv.version == from_jsonl.version == demo_catalog.version


# -- JSONL ------------------------------------------------------------------------------------


def test_from_jsonl_reads_objects_per_line(tmp_path: Path) -> None:
    lines = [
        {"id": 7, "title": "Basil Pesto", "aisle": "pasta sauce", "price": 3.49,
         "attributes": {"size": "6 oz", "vegetarian": True, "serves": 4}},
        {"product_id": "8", "product_name": "Penne Rigate Pasta", "brand": None, "price": None},
    ]  # fmt: skip
    path = write(tmp_path / "items.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    catalog = Catalog.from_jsonl(path)
    assert [p.id for p in catalog] == ["7", "8"]
    assert catalog["7"].attributes == {"size": "6 oz", "vegetarian": "true", "serves": "4"}
    assert catalog["8"].title == "Penne Rigate Pasta" and catalog["8"].price is None


# -- validation errors: each names file, row and field ------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="file not found") as err:
        Catalog.from_csv(tmp_path / "nope.csv")
    assert err.value.path == str(tmp_path / "nope.csv")


def test_missing_required_column(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,name,price\n1,Milk,2.99\n")
    with pytest.raises(CatalogError) as err:
        Catalog.from_csv(path)
    assert (err.value.row, err.value.field) == (1, "title")
    assert "missing required column 'title' (or 'product_name')" in str(err.value)
    assert "found 'id', 'name', 'price'" in str(err.value)


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "")
    with pytest.raises(CatalogError, match="file is empty"):
        Catalog.from_csv(path)


def test_header_only(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,title\n\n")
    with pytest.raises(CatalogError, match="header but no data rows"):
        Catalog.from_csv(path)


@pytest.mark.parametrize(
    ("price", "reason"),
    [("abc", "is not a number"), ("-1.5", "is negative"), ("nan", "not a finite number"),
     ("inf", "not a finite number")],
)  # fmt: skip
def test_bad_price(tmp_path: Path, price: str, reason: str) -> None:
    path = write(tmp_path / "c.csv", f"id,title,price\n1,Milk,2.99\n2,Bread,{price}\n")
    with pytest.raises(CatalogError, match=reason) as err:
        Catalog.from_csv(path)
    assert (err.value.row, err.value.field) == (3, "price")
    assert str(err.value).startswith(f"{path}, row 3, field 'price': ")


def test_bad_popularity_in_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"id": "1", "title": "Milk", "popularity": "lots"}\n')
    with pytest.raises(CatalogError, match="'lots' is not a number") as err:
        Catalog.from_jsonl(path)
    assert (err.value.row, err.value.field) == (1, "popularity")


def test_duplicate_id_names_both_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,title\n1,Milk\n2,Bread\n1,Eggs\n")
    with pytest.raises(CatalogError, match="duplicate id '1': already used in row 2") as err:
        Catalog.from_csv(path)
    assert (err.value.row, err.value.field) == (4, "id")


def test_empty_title(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,title\n1,Milk\n2,   \n")
    with pytest.raises(CatalogError, match="title is empty") as err:
        Catalog.from_csv(path)
    assert (err.value.row, err.value.field) == (3, "title")


def test_wrong_encoding_names_row_and_suggests_encoding_argument(tmp_path: Path) -> None:
    text = "id,title,brand\n1,Milk,Meadow Crest\n2,Crème Fraîche,Délice\n"
    path = write(tmp_path / "latin.csv", text, encoding="latin-1")
    with pytest.raises(CatalogError) as err:
        Catalog.from_csv(path)
    assert (err.value.row, err.value.field) == (3, "title")
    assert "not valid utf-8" in str(err.value) and "encoding='latin-1'" in str(err.value)
    catalog = Catalog.from_csv(path, encoding="latin-1")
    assert catalog["2"].title == "Crème Fraîche"


def test_unknown_encoding_is_a_configuration_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,title\n1,Milk\n")
    with pytest.raises(ConfigurationError, match="unknown encoding 'utf-9'"):
        Catalog.from_csv(path, encoding="utf-9")


def test_row_with_wrong_number_of_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,title,price\n1,Milk,2.99\n2,Bread\n")
    with pytest.raises(CatalogError, match="expected 3 fields as in the header, found 2") as err:
        Catalog.from_csv(path)
    assert err.value.row == 3


def test_both_a_column_and_its_alias(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,product_id,title\n1,1,Milk\n")
    with pytest.raises(CatalogError, match="both 'id' and its alias 'product_id'"):
        Catalog.from_csv(path)


def test_malformed_json_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"id": "1", "title": "Milk"}\n\n{"id": "2", "title": }\n')
    with pytest.raises(CatalogError, match="malformed JSON") as err:
        Catalog.from_jsonl(path)
    assert err.value.row == 3
    assert f"{path}, row 3: malformed JSON" in str(err.value)


def test_non_object_json_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"id": "1", "title": "Milk"}\n["2", "Bread"]\n')
    with pytest.raises(
        CatalogError, match="expected a JSON object per line, found an array"
    ) as err:
        Catalog.from_jsonl(path)
    assert err.value.row == 2


def test_jsonl_missing_title_and_wrong_types(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"id": "1"}\n')
    with pytest.raises(CatalogError, match="missing required key 'title'"):
        Catalog.from_jsonl(path)
    path = write(tmp_path / "b.jsonl", '{"id": "1", "title": "Milk", "attributes": ["x"]}\n')
    with pytest.raises(CatalogError, match="expected an object, found an array") as err:
        Catalog.from_jsonl(path)
    assert err.value.field == "attributes"


def test_catalog_error_is_part_of_the_error_tree(tmp_path: Path) -> None:
    with pytest.raises(StorefrontError):
        Catalog.from_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError):
        Catalog.from_jsonl(write(tmp_path / "empty.jsonl", "\n\n"))


# -- the Instacart layout -----------------------------------------------------------------------


def small_instacart(root: Path, products: str) -> Path:
    root.mkdir()
    write(root / "aisles.csv", "aisle_id,aisle\n1,fresh fruits\n2,yogurt\n")
    write(root / "departments.csv", "department_id,department\n4,produce\n16,dairy eggs\n")
    write(root / "products.csv", "product_id,product_name,aisle_id,department_id\n" + products)
    return root


def test_from_instacart_resolves_aisles_and_departments(tmp_path: Path) -> None:
    root = small_instacart(tmp_path / "ic", '1,Banana,1,4\n2,"Greek Yogurt, Plain",2,16\n')
    catalog = Catalog.from_instacart(root)
    assert catalog.name == "instacart"
    assert catalog["2"].title == "Greek Yogurt, Plain"
    assert catalog["2"].category_path == ("dairy eggs", "yogurt")


def test_from_instacart_unknown_aisle_names_row_and_field(tmp_path: Path) -> None:
    root = small_instacart(tmp_path / "ic", "1,Banana,1,4\n2,Skyr,99,16\n")
    with pytest.raises(CatalogError, match=r"unknown aisle_id '99' \(not in aisles.csv\)") as err:
        Catalog.from_instacart(root)
    assert (err.value.row, err.value.field) == (3, "aisle_id")
    assert err.value.path == str(root / "products.csv")


def test_from_instacart_missing_lookup_file(tmp_path: Path) -> None:
    root = small_instacart(tmp_path / "ic", "1,Banana,1,4\n")
    (root / "departments.csv").unlink()
    with pytest.raises(CatalogError, match="file not found") as err:
        Catalog.from_instacart(root)
    assert err.value.path == str(root / "departments.csv")
    with pytest.raises(CatalogError, match="directory not found"):
        Catalog.from_instacart(tmp_path / "elsewhere")


@pytest.mark.instacart
def test_from_instacart_loads_the_real_catalog(instacart_dir: Path) -> None:
    catalog = Catalog.from_instacart(instacart_dir)
    assert len(catalog) == 49_688
    assert catalog["1"].title == "Chocolate Sandwich Cookies"
    assert catalog["1"].category_path == ("snacks", "cookies cakes")
    assert len(catalog.departments) == 21 and len(catalog.aisles) == 134
