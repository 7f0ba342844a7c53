"""Build a page for a demo user with the non-generative baselines, and explain one product.

Run: python examples/quickstart.py
"""

from storefront_sdk import Catalog, Storefront
from storefront_sdk.demo import demo_user

catalog = Catalog.demo()
sf = Storefront(catalog, llm=None)  # llm="auto" (the default) uses the local model if installed
page = sf.build(demo_user("demo-1"))

for placement in page.placements:
    print(
        f"[{placement.source}] {placement.theme.title}  keywords: {', '.join(placement.keywords)}"
    )
    for sp in placement.products[:3]:
        print(f"    {sp.product.title:<45} score={sp.score:.3f}")

product = page.placements[1].products[0].product
print(f"\nWhy is {product.title!r} on the page?")
for reason in page.explain(product.id):
    print("   ", reason)
print(f"\nbuilt in {page.trace.total_ms:.1f} ms over {len(page.trace.stages)} stage calls")
