"""Write the packaged demo data: storefront_sdk/data/demo_catalog.csv and demo_users.json.

The catalog is invented for the package (no dataset is copied): hand-written
grocery base items per aisle, combined with variants, an "Organic" modifier,
invented brands and sizes by a seeded random generator. The same run writes
six demo users whose order histories are drawn from that catalog. Output is
deterministic: re-running the script reproduces the committed files byte for
byte (a test checks this).

Usage::

    python scripts/make_demo_catalog.py            # writes into storefront_sdk/data/
    python scripts/make_demo_catalog.py --out-dir /tmp/demo
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from storefront_sdk.catalog import Catalog
from storefront_sdk.types import Interaction, Product, UserContext

SEED = 20260526
DATA_DIR = Path(__file__).resolve().parents[1] / "storefront_sdk" / "data"
STORE_BRAND = "Good Basket"


@dataclass(frozen=True)
class Item:
    """A base item: ``template`` with ``{}`` filled by each variant (``Name*3`` = weight 3).

    ``sizes`` are listed smallest first (the price rises with the size); ``mods`` are
    optional title modifiers (``"Family Size {}"``) that make extra products.
    """

    template: str
    variants: str
    low: float
    high: float
    sizes: str
    mods: str = ""
    organic: bool = True


@dataclass(frozen=True)
class Aisle:
    department: str
    name: str
    items: list[Item]
    brands: tuple[str, ...]
    organic_rate: float = 0.0
    unbranded_rate: float = 0.0
    organic_brand: str = "Green Acre Organics"
    attributes: dict[str, str] = field(default_factory=dict)


def I(  # noqa: E743 - a one-letter constructor keeps the item tables readable
    template: str, variants: str, low: float, high: float, sizes: str, mods: str = ""
) -> Item:
    return Item(template, variants, low, high, sizes, mods)


# -- the hand-written catalog --------------------------------------------------------------
# Departments and aisle names follow the lower-case style of common grocery taxonomies.

PRODUCE = ("Sunny Orchard", "Valley Fresh", STORE_BRAND)
DAIRY = ("Meadow Crest", "Clover Lane Creamery", "Bluebell Farm", STORE_BRAND)
BAKERY = ("Hearthstone Bakery", "Golden Crust", "Old Mill Bread Co.", STORE_BRAND)
MEAT = ("Prairie Ridge", "Blue Ridge Farms", "Heritage Butcher", STORE_BRAND)
FROZEN = ("Polar Pantry", "Frosty Fields", "Nonna Lucia", STORE_BRAND)
PANTRY = ("Pantry Basics", "Harvest Lane", "Nonna Lucia", STORE_BRAND)
SNACKS = ("Crunch Co.", "Happy Munch", "Trailhead Snacks", STORE_BRAND)
DRINKS = ("Clearbrook", "Sunburst", "Fizzwell", STORE_BRAND)
BREAKFAST = ("Morning Harvest", "Sunrise Mills", "Maple Hollow", STORE_BRAND)
DELI = ("Corner Deli", "Delicato", "Heritage Butcher", STORE_BRAND)
HOUSEHOLD = ("Sparkle Home", "FreshFold", "EverClean", STORE_BRAND)
CARE = ("Willow & Sage", "BrightSmile", "Daily Dose", STORE_BRAND)
BABY = ("Little Sprout", "Tiny Toes", "Cuddle Soft", STORE_BRAND)
PETS = ("Happy Tails", "Whisker Feast", "Good Boy Kitchen", STORE_BRAND)
AGE_21 = {"age_restricted": "21+"}

# fmt: off
AISLES: list[Aisle] = [
    # produce ------------------------------------------------------------------------------
    Aisle("produce", "fresh fruits", [
        I("{}", "Bananas*8|Lemons*2|Limes*2|Hass Avocados*5|Kiwi|Mangoes|Yellow Peaches|"
          "Bartlett Pears|Navel Oranges", 0.39, 2.49, "each|1 lb|2 lb bag"),
        I("{}", "Strawberries*4|Blueberries*3|Raspberries|Blackberries|Bing Cherries|"
          "Seedless Red Grapes*2|Seedless Green Grapes|Cotton Candy Grapes", 2.49, 6.99,
          "6 oz|1 lb|2 lb"),
        I("{}", "Pineapple|Cantaloupe|Mini Seedless Watermelon|Honeydew Melon", 2.99, 5.99,
          "each"),
        I("{} Apples", "Honeycrisp*3|Gala*2|Fuji|Granny Smith|Pink Lady", 1.49, 6.49,
          "each|3 lb bag"),
        I("{}", "Clementines*2|Cara Cara Oranges|Ruby Red Grapefruit", 3.99, 7.49,
          "2 lb bag|3 lb bag"),
    ], PRODUCE, organic_rate=0.35, unbranded_rate=0.7),
    Aisle("produce", "fresh vegetables", [
        I("{}", "Garlic*3|Jalapeno Peppers|Ginger Root|Shallots|Red Bell Pepper|Green Bell Pepper|"
          "English Cucumber|Zucchini|Yellow Squash|Eggplant|Sweet Corn|Butternut Squash|"
          "Cauliflower|Broccoli Crowns*2", 0.49, 3.99, "each|1 lb"),
        I("{}", "Carrots*2|Yellow Onions*3|Red Onions|Russet Potatoes*2|Sweet Potatoes|"
          "Baby Gold Potatoes", 1.49, 5.99, "2 lb bag|3 lb bag|5 lb bag"),
        I("{}", "Roma Tomatoes*2|Cherry Tomatoes*2|Asparagus|Green Beans|Brussels Sprouts|"
          "Baby Bella Mushrooms|White Mushrooms|Snap Peas", 1.99, 4.99, "8 oz|1 lb"),
        I("{}", "Celery Hearts|Lacinato Kale|Rainbow Chard|Bok Choy", 1.99, 3.99, "bunch"),
    ], PRODUCE, organic_rate=0.35, unbranded_rate=0.7),
    Aisle("produce", "fresh herbs", [
        I("Fresh {}", "Basil*3|Cilantro*2|Flat Leaf Parsley*2|Mint|Rosemary|Thyme|Dill|Chives|"
          "Sage|Oregano|Tarragon|Bay Leaves", 1.49, 3.49, "0.75 oz|bunch"),
        I("{}", "Green Onions*2|Lemongrass|Poultry Herb Blend|Italian Herb Blend|"
          "Living Basil Plant",
          0.99, 4.49, "0.75 oz|bunch|each"),
    ], PRODUCE, organic_rate=0.45, unbranded_rate=0.5),
    Aisle("produce", "packaged salads", [
        I("{}", "Baby Spinach*3|Spring Mix*2|Baby Arugula|Power Greens|Baby Kale|Butter Lettuce",
          2.49, 5.99, "5 oz|10 oz|16 oz"),
        I("{}", "Chopped Romaine|Shredded Iceberg Lettuce|Coleslaw Mix|Romaine Hearts|"
          "Shredded Carrots|Broccoli Slaw", 1.99, 3.99, "8 oz|10 oz|3 ct"),
        I("{} Salad Kit", "Caesar*2|Asian Sesame|Southwest Chopped|Greek|Sweet Kale|Bacon Ranch|"
          "Avocado Ranch", 3.49, 4.99, "10 oz|12 oz"),
    ], PRODUCE, organic_rate=0.4),
    # dairy eggs -----------------------------------------------------------------------------
    Aisle("dairy eggs", "milk", [
        I("{} Milk", "Whole*4|2% Reduced Fat*3|1% Low Fat|Fat Free|Lactose Free Whole|"
          "Lactose Free 2%|Chocolate|Grassfed Whole|Strawberry", 1.99, 6.49,
          "1 quart|half gallon|1 gallon"),
        I("{} Milk", "Unsweetened Almond*2|Vanilla Almond|Original Oat*2|Barista Oat|"
          "Unsweetened Soy|Coconut|Unsweetened Cashew|Extra Creamy Oat", 2.99, 5.49,
          "32 fl oz|half gallon"),
    ], DAIRY, organic_rate=0.4),
    Aisle("dairy eggs", "yogurt", [
        I("{} Greek Yogurt", "Plain*3|Vanilla*2|Strawberry|Blueberry|Honey|Peach|Mixed Berry|"
          "Nonfat Plain|Black Cherry", 1.29, 6.99, "5.3 oz|32 oz"),
        I("{} Whole Milk Yogurt", "Plain|Vanilla|Strawberry|Maple", 1.19, 4.99, "6 oz|32 oz"),
        I("{}", "Strawberry Kids Yogurt Tubes|Vanilla Icelandic Skyr|Plain Icelandic Skyr|"
          "Strawberry Drinkable Yogurt|Vanilla Coconut Yogurt|Plain Oat Milk Yogurt|"
          "Low Fat Vanilla Yogurt", 1.49, 5.99, "5.3 oz|8 ct|24 oz"),
    ], DAIRY, organic_rate=0.3),
    Aisle("dairy eggs", "cheese", [
        I("Shredded {} Cheese", "Mozzarella*3|Mild Cheddar|Sharp Cheddar*2|Mexican Blend|"
          "Italian Blend|Parmesan", 2.49, 5.49, "8 oz|16 oz"),
        I("Sliced {} Cheese", "Swiss|Provolone|Pepper Jack|Muenster|American|Colby Jack",
          2.99, 5.49, "12 slices|8 oz"),
        I("{}", "Sharp Cheddar Cheese Block|Monterey Jack Cheese Block|Grated Parmesan Cheese*2|"
          "Fresh Mozzarella Ball*2|Whole Milk Ricotta Cheese|Crumbled Feta Cheese|"
          "Mozzarella String Cheese*2|Cream Cheese*2|Goat Cheese Log|Pecorino Romano Cheese|"
          "Cottage Cheese", 2.49, 8.99, "8 oz|12 ct|16 oz"),
    ], DAIRY, organic_rate=0.25),
    Aisle("dairy eggs", "eggs", [
        I("{}", "Large White Eggs*4|Large Brown Eggs*3|Cage Free Large Brown Eggs*2|"
          "Pasture Raised Large Eggs*2|Extra Large White Eggs|Free Range Jumbo Eggs|"
          "Omega-3 Large Eggs|Cage Free Large White Eggs|Pasture Raised Brown Eggs",
          2.49, 8.99, "6 ct|12 ct|18 ct", mods="{} Family Pack"),
        I("{}", "Liquid Egg Whites|Hard Boiled Eggs|Egg Bites with Bacon and Gruyere|"
          "Cage Free Liquid Whole Eggs", 2.99, 5.99, "2 ct|6 ct|16 fl oz"),
    ], ("Happy Hen", "Sunny Side Farms", *DAIRY), organic_rate=0.45),
    Aisle("dairy eggs", "butter cream", [
        I("{} Butter", "Salted*3|Unsalted*2|European Style|Whipped|Grassfed Salted|Plant Based",
          3.49, 6.99, "8 oz|16 oz"),
        I("{}", "Heavy Whipping Cream*2|Half and Half*2|Sour Cream*2|Light Sour Cream|"
          "Whipped Cream Topping|Ghee|Creme Fraiche", 1.99, 7.99, "8 oz|1 pint|16 fl oz"),
        I("{} Coffee Creamer", "French Vanilla*2|Hazelnut|Sweet Cream|Caramel Macchiato|"
          "Oat Milk", 2.99, 5.49, "16 fl oz|32 fl oz"),
    ], DAIRY, organic_rate=0.25),
    # bakery ---------------------------------------------------------------------------------
    Aisle("bakery", "bread", [
        I("{}", "Sourdough Sandwich Loaf*3|Sourdough Boule|French Baguette*2|Ciabatta Rolls|"
          "Italian Bread|Rosemary Focaccia|Dinner Rolls|Hamburger Buns|Hot Dog Buns|"
          "Brioche Burger Buns|Pretzel Rolls", 2.49, 5.99, "8 ct|1 loaf|16 oz"),
        I("{} Bread", "Whole Wheat*3|Multigrain*2|Honey Oat|White Sandwich*2|Seeded Rye|"
          "Cinnamon Raisin|Potato|Gluten Free White|Sprouted Grain|Brioche|Pumpernickel",
          2.99, 6.49, "1 loaf|20 oz|24 oz"),
    ], BAKERY, organic_rate=0.2),
    Aisle("bakery", "bagels muffins", [
        I("{} Bagels", "Plain*2|Everything*2|Sesame|Cinnamon Raisin|Blueberry|Whole Wheat|Onion|"
          "Asiago Cheese", 3.49, 5.49, "4 ct|6 ct", mods="Mini {}"),
        I("{} Muffins", "Blueberry*2|Banana Nut|Double Chocolate|Lemon Poppyseed|Bran|"
          "Pumpkin Spice", 3.99, 6.49, "4 ct|6 ct", mods="Mini {}"),
        I("{} English Muffins", "Original*2|Whole Wheat|Sourdough|Cinnamon Raisin", 2.99, 4.49,
          "6 ct"),
    ], BAKERY, organic_rate=0.1),
    Aisle("bakery", "cakes pastries", [
        I("{}", "Butter Croissants*2|Chocolate Croissants|Almond Croissants|Cheese Danish|"
          "Raspberry Danish|Cinnamon Rolls|Glazed Donuts|Brownie Bites|Cannoli|Vanilla Cupcakes|"
          "Chocolate Cupcakes|Red Velvet Cupcakes|Lemon Bars|Chocolate Eclairs|Macarons",
          3.99, 9.99, "4 ct|6 ct|12 ct"),
        I("{}", "Apple Pie|Pumpkin Pie|Cherry Pie|New York Cheesecake|Carrot Cake|"
          "Chocolate Fudge Cake|Lemon Pound Cake|Tres Leches Cake|Tiramisu|Fruit Tart|"
          "Banana Bread Loaf", 5.99, 19.99, "each"),
    ], BAKERY),
    Aisle("bakery", "tortillas flatbreads", [
        I("{} Tortillas", "Flour*2|Corn*2|Whole Wheat|Low Carb|Street Taco Corn|Burrito Size Flour|"
          "Almond Flour|Cassava Flour", 2.49, 5.99, "8 ct|10 ct|30 ct"),
        I("{}", "White Pita Pockets|Whole Wheat Pita Pockets|Garlic Naan|Original Naan|"
          "Spinach Wraps|Sun Dried Tomato Wraps|Whole Grain Wraps|Lavash Flatbread|"
          "Thin Pizza Crust|Flatbread Pizza Crusts|Mini Naan Dippers", 2.49, 5.49,
          "2 ct|4 ct|6 ct"),
    ], BAKERY, organic_rate=0.2),
    # meat seafood ---------------------------------------------------------------------------
    Aisle("meat seafood", "poultry", [
        I("{}", "Boneless Skinless Chicken Breasts*4|Boneless Skinless Chicken Thighs*2|"
          "Bone-In Chicken Thighs|Chicken Drumsticks|Chicken Wings|Ground Chicken|"
          "Ground Turkey*2|Turkey Breast Tenderloins|Chicken Tenderloins|"
          "Thin Sliced Chicken Breast|"
          "Chicken Leg Quarters|Turkey Meatballs|Split Chicken Breasts", 3.99, 14.99,
          "1 lb|2 lb|family pack", mods="Air Chilled {}"),
        I("{}", "Whole Chicken|Cornish Game Hens|Whole Turkey Breast", 7.99, 24.99, "each"),
    ], MEAT, organic_rate=0.25),
    Aisle("meat seafood", "beef pork", [
        I("{} Ground Beef", "80/20*2|90/10 Lean*2|85% Lean|Grassfed", 4.99, 9.99, "1 lb|2 lb"),
        I("{}", "Ribeye Steak*2|New York Strip Steak|Top Sirloin Steak|Flank Steak|Skirt Steak|"
          "Filet Mignon|Lamb Loin Chops", 8.99, 29.99, "each|1 lb"),
        I("{}", "Beef Stew Meat|Chuck Roast|Pork Tenderloin|Boneless Pork Chops|Bone-In Pork Chops|"
          "Baby Back Ribs|Pork Shoulder|Ground Pork|Beef Short Ribs|Ground Lamb|Beef Brisket",
          4.99, 19.99, "1 lb|2 lb|family pack"),
    ], MEAT, organic_rate=0.15),
    Aisle("meat seafood", "seafood", [
        I("{}", "Atlantic Salmon Fillet*3|Wild Sockeye Salmon Fillet|Cod Fillets|Tilapia Fillets|"
          "Ahi Tuna Steaks|Mahi Mahi Fillets|Halibut Fillet|Swordfish Steak|Rainbow Trout|"
          "Wild Alaskan Pollock Fillets|Arctic Char Fillet|Branzino", 6.99, 24.99,
          "8 oz|1 lb"),
        I("{}", "Large Raw Shrimp*2|Cooked Shrimp Cocktail|Sea Scallops|Live Mussels|"
          "Snow Crab Legs|"
          "Smoked Salmon|Lobster Tails|Calamari Rings|Littleneck Clams|Lump Crab Meat",
          7.99, 34.99, "4 oz|8 oz|1 lb|2 ct"),
    ], ("Harbor Catch", "Blue Wave Seafood", STORE_BRAND)),
    Aisle("meat seafood", "sausages bacon", [
        I("{} Bacon", "Hickory Smoked*2|Applewood Smoked|Thick Cut*2|Center Cut|Turkey|Uncured|"
          "Maple", 4.49, 9.99, "12 oz|16 oz"),
        I("{}", "Sweet Italian Sausage*2|Hot Italian Sausage|Breakfast Sausage Links|"
          "Chicken Apple Sausage|Bratwurst|Polish Kielbasa|Fresh Chorizo|Andouille Sausage|"
          "Beef Hot Dogs|Pork Breakfast Sausage Patties|Pancetta|Spicy Chicken Sausage|"
          "Smoked Beef Sausage", 3.99, 8.99, "5 ct|12 oz|16 oz"),
    ], MEAT, organic_rate=0.15),
    # frozen ---------------------------------------------------------------------------------
    Aisle("frozen", "frozen meals", [
        I("{}", "Chicken Alfredo Pasta Bowl|Spinach Ricotta Ravioli|Chicken Tikka Masala|"
          "Frozen Macaroni and Cheese|Chicken Pot Pie|Vegetable Fried Rice|Teriyaki Chicken Bowl|"
          "Pad Thai Noodle Bowl|Meatball Marinara Pasta|Shrimp Scampi Pasta|"
          "Chicken Parmesan with Spaghetti|Butter Chicken with Basmati Rice|Beef and Broccoli Bowl|"
          "Cheese Enchiladas|Burrito Bowl", 2.99, 5.99, "10 oz|12 oz"),
        I("{}", "Five Cheese Lasagna*2|Bean and Cheese Burritos|Pork Potstickers|Chicken Dumplings|"
          "Sausage Egg and Cheese Breakfast Sandwiches|Veggie Burgers|Breaded Chicken Nuggets*2|"
          "Fish Sticks|Mozzarella Sticks|Vegetable Spring Rolls", 4.99, 12.99,
          "4 ct|20 oz|32 oz", mods="Family Size {}"),
    ], FROZEN, organic_rate=0.1),
    Aisle("frozen", "frozen pizza", [
        I("{} Pizza", "Cheese*2|Pepperoni*3|Margherita*2|Supreme|Four Cheese|BBQ Chicken|Hawaiian|"
          "Sausage and Mushroom|Roasted Veggie|Meat Lovers|White", 4.99, 10.99, "1 ct|2 ct",
          mods="Thin Crust {}|Rising Crust {}|Stone Baked {}"),
        I("Cauliflower Crust {} Pizza", "Cheese|Margherita|Veggie", 6.99, 9.99, "1 ct"),
        I("{}", "Pepperoni Pizza Rolls*2|Cheese French Bread Pizza|Pepperoni French Bread Pizza|"
          "Mini Cheese Pizza Bagels", 3.49, 7.49, "2 ct|9 ct|40 ct"),
    ], FROZEN, organic_rate=0.05),
    Aisle("frozen", "ice cream", [
        I("{} Ice Cream", "Vanilla Bean*3|Chocolate*2|Mint Chocolate Chip|Cookies and Cream*2|"
          "Strawberry|Salted Caramel|Coffee|Butter Pecan|Rocky Road|Cookie Dough|Black Raspberry",
          3.99, 6.99, "1 pint|1.5 quart"),
        I("{} Gelato", "Pistachio|Stracciatella|Dark Chocolate|Sea Salt Caramel", 4.99, 6.99,
          "1 pint"),
        I("{}", "Strawberry Frozen Yogurt Bars|Vanilla Ice Cream Sandwiches|Mango Fruit Bars|"
          "Coconut Fruit Bars|Lemon Sorbet|Raspberry Sorbet|Vanilla Frozen Yogurt|"
          "Chocolate Dipped Ice Cream Bars|Mochi Ice Cream Variety Pack", 3.49, 6.99,
          "4 ct|6 ct|1 pint"),
    ], ("Polar Pantry", "Creamery Lane", "Frosty Fields", STORE_BRAND), organic_rate=0.1),
    Aisle("frozen", "frozen vegetables fruit", [
        I("Frozen {}", "Broccoli Florets*2|Sweet Peas|Sweet Corn|Mixed Vegetables|Cut Green Beans|"
          "Chopped Spinach|Riced Cauliflower|Stir Fry Vegetables|Shelled Edamame|Brussels Sprouts|"
          "Strawberries*2|Blueberries*2|Mango Chunks|Mixed Berries*2|Dark Sweet Cherries|"
          "Pineapple Chunks|Acai Smoothie Packs", 1.49, 5.99, "12 oz|16 oz|32 oz"),
        I("{}", "Crinkle Cut French Fries|Sweet Potato Fries|Potato Tater Tots|Hash Brown Patties",
          2.49, 4.99, "28 oz|32 oz"),
    ], FROZEN, organic_rate=0.3),
    # pantry ---------------------------------------------------------------------------------
    Aisle("pantry", "pasta", [
        I("{} Pasta", "Spaghetti*4|Penne Rigate*3|Rigatoni*2|Fusilli|Farfalle|Linguine|Fettuccine|"
          "Orecchiette|Elbow Macaroni|Angel Hair|Rotini|Bucatini|Orzo|Ziti|Whole Wheat Spaghetti|"
          "Whole Wheat Penne|Gluten Free Penne|Gluten Free Spaghetti|Chickpea Rotini|"
          "Red Lentil Penne",
          0.99, 3.99, "8 oz|12 oz|16 oz"),
        I("{}", "Lasagna Noodles|Wide Egg Noodles|Potato Gnocchi|Dried Cheese Tortellini|"
          "Macaroni and Cheese Dinner*2|White Cheddar Shells and Cheese", 0.99, 4.49,
          "6 oz|7.25 oz|16 oz"),
    ], ("Nonna Lucia", "Pasta Fresca", "Pantry Basics", STORE_BRAND), organic_rate=0.2),
    Aisle("pantry", "pasta sauce", [
        I("{} Pasta Sauce", "Marinara*4|Tomato Basil*2|Roasted Garlic|Arrabbiata|Vodka|Four Cheese|"
          "Mushroom|Puttanesca|Tomato and Sweet Onion|Roasted Red Pepper|Spicy Marinara",
          2.49, 8.99, "24 oz", mods="Low Sodium {}"),
        I("{}", "Classic Alfredo Sauce|Roasted Garlic Alfredo Sauce|Basil Pesto*2|"
          "Sun Dried Tomato Pesto|Bolognese Meat Sauce|Pizza Sauce|Cacio e Pepe Sauce",
          2.49, 7.99, "6 oz|15 oz|24 oz"),
    ], ("Nonna Lucia", "Pasta Fresca", "Harvest Lane", STORE_BRAND), organic_rate=0.2),
    Aisle("pantry", "canned goods soups", [
        I("{}", "Black Beans*2|Chickpeas*2|Kidney Beans|Cannellini Beans|Pinto Beans|Refried Beans|"
          "Crushed Tomatoes*2|Diced Tomatoes*2|Whole Peeled San Marzano Tomatoes|Tomato Paste|"
          "Tomato Sauce|Whole Kernel Sweet Corn|Chunk Light Tuna in Water|Albacore Tuna|"
          "Coconut Milk", 0.79, 3.99, "5 oz|15 oz|28 oz"),
        I("{}", "Chicken Broth*2|Vegetable Broth|Beef Broth|Chicken Noodle Soup|Tomato Soup|"
          "Minestrone Soup|Lentil Soup|Split Pea Soup|Clam Chowder", 1.49, 4.49,
          "18.6 oz|32 fl oz", mods="Low Sodium {}"),
    ], PANTRY, organic_rate=0.25),
    Aisle("pantry", "oils vinegars", [
        I("{}", "Extra Virgin Olive Oil*4|Light Olive Oil|Avocado Oil|Canola Oil|Vegetable Oil|"
          "Coconut Oil|Toasted Sesame Oil|Sunflower Oil|White Truffle Oil|Chili Crisp Oil|"
          "Olive Oil Cooking Spray", 2.49, 16.99, "8.5 fl oz|16.9 fl oz|33.8 fl oz"),
        I("{}", "Balsamic Vinegar of Modena|Red Wine Vinegar|Apple Cider Vinegar|"
          "White Wine Vinegar|"
          "Rice Vinegar|Distilled White Vinegar|Sherry Vinegar|Balsamic Glaze", 1.99, 9.99,
          "8.5 fl oz|16.9 fl oz"),
    ], ("Golden Grove", "Harvest Lane", "Nonna Lucia", STORE_BRAND), organic_rate=0.2),
    Aisle("pantry", "spices seasonings", [
        I("Ground {}", "Cinnamon*2|Cumin|Black Pepper*2|Turmeric|Ginger|Nutmeg|Cardamom",
          1.99, 6.99, "2 oz|4 oz"),
        I("{}", "Smoked Paprika|Garlic Powder*2|Onion Powder|Italian Seasoning*2|Dried Oregano|"
          "Crushed Red Pepper Flakes|Chili Powder|Dried Bay Leaves|Everything Bagel Seasoning|"
          "Taco Seasoning|Curry Powder|Black Peppercorns", 1.49, 5.99, "1 oz|2 oz|3 oz"),
        I("{}", "Fine Sea Salt|Kosher Salt*2|Pink Himalayan Salt|Flaky Sea Salt", 1.49, 6.99,
          "8 oz|16 oz|3 lb"),
    ], ("Spice Route", "Pantry Basics", STORE_BRAND), organic_rate=0.25),
    Aisle("pantry", "baking ingredients", [
        I("{}", "All Purpose Flour*3|Bread Flour|Whole Wheat Flour|Almond Flour|Granulated Sugar*2|"
          "Light Brown Sugar|Powdered Sugar|Cane Sugar", 1.99, 9.99, "1 lb|2 lb|5 lb"),
        I("{}", "Baking Soda|Baking Powder|Pure Vanilla Extract|Active Dry Yeast|Cornstarch|"
          "Unsweetened Cocoa Powder|Sweetened Condensed Milk|Shredded Coconut|"
          "Semi-Sweet Chocolate Chips*2|Dark Chocolate Chips|Chocolate Cake Mix|Yellow Cake Mix|"
          "Fudge Brownie Mix|Vanilla Frosting", 0.99, 7.99, "4 oz|8 oz|12 oz|16 oz"),
    ], ("Sunrise Mills", "Pantry Basics", STORE_BRAND), organic_rate=0.25),
    Aisle("pantry", "rice grains", [
        I("{}", "Long Grain White Rice*2|Jasmine Rice*3|Basmati Rice*2|Brown Rice|Arborio Rice|"
          "Wild Rice Blend|White Quinoa|Tri-Color Quinoa|Pearl Couscous|Pearled Farro|Pearl Barley|"
          "Red Lentils|Green Lentils|Instant Polenta|Bulgur Wheat|Sushi Rice|Spanish Rice Mix|"
          "Microwave Jasmine Rice|Black Rice", 1.49, 8.99, "8.5 oz|16 oz|2 lb|5 lb"),
    ], ("Harvest Lane", "Pantry Basics", STORE_BRAND), organic_rate=0.3),
    Aisle("pantry", "condiments", [
        I("{}", "Yellow Mustard|Dijon Mustard|Tomato Ketchup*3|Real Mayonnaise*2|Avocado Oil Mayo|"
          "Sriracha Hot Sauce|Louisiana Hot Sauce|Original BBQ Sauce|Honey BBQ Sauce|Soy Sauce*2|"
          "Low Sodium Soy Sauce|Teriyaki Sauce|Ranch Dressing*2|Caesar Dressing|"
          "Balsamic Vinaigrette|Italian Dressing|Honey Mustard Dressing|Sweet Relish|"
          "Dill Pickle Spears|Kalamata Olives|Nonpareil Capers", 1.49, 6.99,
          "12 oz|16 fl oz|20 oz|24 oz"),
    ], PANTRY, organic_rate=0.2),
    # snacks ---------------------------------------------------------------------------------
    Aisle("snacks", "chips pretzels", [
        I("{} Potato Chips", "Sea Salt*3|Salt and Vinegar|Sour Cream and Onion*2|Barbecue*2|"
          "Kettle Cooked Original|Jalapeno|Cracked Pepper", 2.49, 4.99, "5 oz|8 oz",
          mods="Family Size {}|Reduced Fat {}"),
        I("{} Tortilla Chips", "Restaurant Style*2|Blue Corn|Hint of Lime|Multigrain", 2.99, 4.99,
          "11 oz|13 oz", mods="Family Size {}"),
        I("{}", "Mini Twist Pretzels|Sourdough Hard Pretzels|Honey Wheat Pretzel Braids|"
          "Sea Salt Popcorn|White Cheddar Popcorn*2|Kettle Corn|Butter Microwave Popcorn|"
          "Cheese Puffs*2|Veggie Straws|Sea Salt Pita Chips|Plantain Chips", 1.99, 4.99,
          "3 ct|6 oz|16 oz"),
    ], SNACKS, organic_rate=0.1),
    Aisle("snacks", "crackers", [
        I("{} Crackers", "Cheddar Cheese*3|Whole Wheat|Saltine*2|Water|Butter Round*2|"
          "Rosemary Olive Oil|Sea Salt Rice|Multigrain|Honey Graham|Almond Flour|Seeded|"
          "Peanut Butter Cheese Sandwich|Animal|Everything Bagel|Cracked Pepper|Sesame Rice",
          1.99, 5.49, "4 oz|7 oz|13.7 oz", mods="Family Size {}|Reduced Fat {}"),
    ], SNACKS, organic_rate=0.15),
    Aisle("snacks", "cookies", [
        I("{} Cookies", "Chocolate Chip*4|Oatmeal Raisin|Double Chocolate|Peanut Butter|"
          "Snickerdoodle|Shortbread|Ginger Snap|Chocolate Sandwich*2|Lemon Sandwich|Vanilla Wafer|"
          "Sugar|Soft Baked Chocolate Chunk|Oatmeal Chocolate Chip|Butter|Coconut Macaroon",
          2.49, 5.99, "8 oz|11 oz|13 oz", mods="Mini {}|Family Size {}"),
        I("{}", "Almond Biscotti|Fig Bars|Chocolate Covered Graham Cookies|Rice Crispy Treats",
          2.99, 4.99, "8 oz"),
    ], SNACKS, organic_rate=0.1),
    Aisle("snacks", "candy chocolate", [
        I("{} Chocolate Bar", "Milk*2|70% Dark*2|Sea Salt Almond Dark|Caramel Filled|Hazelnut|"
          "Mint Dark|Toffee Milk|White", 1.49, 4.49, "1.5 oz|3.5 oz"),
        I("{}", "Peanut Butter Cups*3|Gummy Bears*2|Sour Gummy Worms|Fruit Chews|"
          "Chocolate Covered Almonds|Chocolate Covered Pretzels|Mint Chocolate Thins|"
          "Strawberry Licorice Twists|Sea Salt Caramels|Jelly Beans|Fruit Lollipops|"
          "Peppermint Patties|Chocolate Truffles|Chocolate Covered Raisins|Sour Fruit Belts",
          1.49, 7.99, "5 oz|7 oz|12 ct", mods="{} Share Size"),
    ], ("Cocoa Grove", "Happy Munch", "Sweet Street", STORE_BRAND), organic_rate=0.1),
    Aisle("snacks", "nuts dried fruit", [
        I("{}", "Roasted Salted Almonds*2|Raw Almonds|Whole Cashews*2|Honey Roasted Cashews|"
          "Shelled Pistachios|In-Shell Pistachios|Deluxe Mixed Nuts|Walnut Halves|Pecan Halves|"
          "Honey Roasted Peanuts|Dry Roasted Peanuts|Roasted Sunflower Seeds|Roasted Pumpkin Seeds|"
          "Macadamia Nuts", 2.99, 12.99, "6 oz|16 oz|26 oz"),
        I("{}", "Classic Trail Mix*2|Tropical Trail Mix|Chocolate Trail Mix|Dried Mango|"
          "Dried Cranberries|Seedless Raisins|Medjool Dates|Dried Apricots|"
          "Freeze Dried Strawberries",
          2.49, 8.99, "6 oz|8 oz|16 oz"),
    ], ("Trailhead Snacks", "Crunch Co.", STORE_BRAND), organic_rate=0.2),
    # beverages ------------------------------------------------------------------------------
    Aisle("beverages", "water sparkling water", [
        I("{} Sparkling Water", "Lime*3|Lemon|Grapefruit*2|Black Cherry|Original|Raspberry Lime|"
          "Mango|Coconut|Cucumber Mint|Passionfruit|Blood Orange", 3.99, 6.49,
          "8 pack 12 fl oz cans|12 pack 12 fl oz cans"),
        I("{}", "Spring Water*3|Purified Water|Alkaline Water|Pure Coconut Water|"
          "Sparkling Mineral Water|Tonic Water|Club Soda|Electrolyte Water", 0.99, 6.99,
          "1 liter|6 pack|24 pack 16.9 fl oz"),
    ], DRINKS),
    Aisle("beverages", "juice", [
        I("{}", "Orange Juice No Pulp*3|Orange Juice with Pulp|Apple Juice*2|Cranberry Juice|"
          "Concord Grape Juice|Pineapple Juice|Ruby Red Grapefruit Juice|Tomato Juice|"
          "Classic Lemonade|Strawberry Lemonade|Mango Nectar|Fruit Punch|Tart Cherry Juice|"
          "Pomegranate Juice", 1.99, 6.99, "52 fl oz|64 fl oz"),
        I("{}", "Cold Pressed Green Juice|Carrot Ginger Juice|Kids Apple Juice Boxes|"
          "Watermelon Juice|Ginger Turmeric Shot", 2.99, 7.99, "2 fl oz|12 fl oz|8 pack"),
    ], ("Sunburst", "Orchard Squeeze", STORE_BRAND), organic_rate=0.2),
    Aisle("beverages", "soft drinks", [
        I("{} Soda", "Cola*3|Diet Cola*2|Zero Sugar Cola|Lemon Lime|Ginger Ale|Orange|Cream|"
          "Black Cherry|Cane Sugar Cola|Grape", 1.99, 7.99, "2 liter|12 pack 12 fl oz cans",
          mods="{} Mini Cans"),
        I("{}", "Root Beer|Ginger Beer|Original Energy Drink|Sugar Free Energy Drink|"
          "Tropical Energy Drink|Fruit Punch Sports Drink|Lemon Lime Sports Drink|"
          "Raspberry Prebiotic Soda|Cherry Vanilla Prebiotic Soda", 1.99, 8.99,
          "28 fl oz|4 pack 16 fl oz|12 pack 12 fl oz cans"),
    ], ("Fizzwell", "Sunburst", STORE_BRAND)),
    Aisle("beverages", "coffee", [
        I("{} Ground Coffee", "Medium Roast*3|Dark Roast*2|French Roast|Breakfast Blend|Colombian|"
          "Decaf|Hazelnut|Guatemalan", 6.99, 12.99, "12 oz|24 oz"),
        I("{} Whole Bean Coffee", "Espresso Roast|Ethiopian Yirgacheffe|Sumatra|House Blend",
          9.99, 15.99, "12 oz"),
        I("{}", "Medium Roast Coffee Pods|Dark Roast Coffee Pods|Black Cold Brew Coffee|"
          "Vanilla Cold Brew Coffee|Instant Coffee|Oat Milk Latte|Espresso Shots",
          3.99, 13.99, "4 ct|8 oz|12 ct|32 fl oz"),
    ], ("Roastery Row", "Morning Harvest", STORE_BRAND), organic_rate=0.25),
    Aisle("beverages", "tea", [
        I("{} Tea", "Green*3|Earl Grey|English Breakfast*2|Chamomile|Peppermint|Chai|Jasmine Green|"
          "Hibiscus|Rooibos|Ginger Lemon|White Peony", 2.49, 6.99, "20 ct"),
        I("{}", "Sweet Iced Tea|Unsweetened Iced Tea|Lemon Iced Tea|Peach Iced Tea|Ginger Kombucha|"
          "Mixed Berry Kombucha|Matcha Green Tea Powder|Loose Leaf Oolong", 1.99, 14.99,
          "16 fl oz|18.5 fl oz|64 fl oz|3 oz"),
    ], ("Leaf & Kettle", "Clearbrook", STORE_BRAND), organic_rate=0.25),
    # breakfast ------------------------------------------------------------------------------
    Aisle("breakfast", "cereal", [
        I("{} Cereal", "Honey Nut Oat*3|Frosted Corn Flakes|Corn Flakes|Bran Flakes|Raisin Bran|"
          "Chocolate Puffs|Toasted Oat*2|Fruity Rings|Cinnamon Crunch|Crispy Rice|"
          "Frosted Shredded Wheat|Peanut Butter Puffs|Multigrain Flakes|High Protein|"
          "Berry Crunch Kids|Ancient Grain Flakes|Honey Almond Flakes", 2.99, 5.99,
          "10 oz|12 oz|18 oz", mods="Family Size {}"),
    ], BREAKFAST, organic_rate=0.2),
    Aisle("breakfast", "granola oatmeal", [
        I("{} Granola", "Honey Almond*2|Maple Pecan|Dark Chocolate|Vanilla Blueberry|"
          "Coconut Cashew|"
          "Low Sugar|Peanut Butter", 3.99, 6.99, "11 oz|12 oz"),
        I("{} Instant Oatmeal", "Maple Brown Sugar*2|Apple Cinnamon|Original|Peaches and Cream",
          2.99, 4.99, "8 ct|10 ct"),
        I("{}", "Old Fashioned Rolled Oats*2|Quick Oats|Steel Cut Oats|Swiss Muesli|Chia Seeds|"
          "Ground Flaxseed|Hemp Hearts|Blueberry Overnight Oats Cup", 2.49, 8.99,
          "2.6 oz|12 oz|18 oz|42 oz"),
    ], BREAKFAST, organic_rate=0.3),
    Aisle("breakfast", "pancake mixes syrup", [
        I("{} Pancake Mix", "Buttermilk*2|Whole Wheat|Protein|Gluten Free|Blueberry|Sourdough",
          2.49, 5.99, "16 oz|32 oz"),
        I("{}", "Belgian Waffle Mix|Crepe Mix|Strawberry Toaster Pastries|"
          "Brown Sugar Cinnamon Toaster Pastries|Cinnamon French Toast Sticks|"
          "Buttermilk Biscuit Mix",
          2.49, 5.99, "8 ct|16 oz"),
        I("{}", "Pure Maple Syrup*2|Dark Robust Maple Syrup|Pancake Syrup|Sugar Free Syrup|"
          "Blueberry Syrup|Bourbon Barrel Aged Maple Syrup", 3.49, 14.99,
          "12 fl oz|24 fl oz|32 fl oz"),
    ], ("Maple Hollow", "Sunrise Mills", STORE_BRAND), organic_rate=0.2),
    Aisle("breakfast", "breakfast bars", [
        I("{} Granola Bars", "Chewy Chocolate Chip*2|Oats and Honey Crunchy|Peanut Butter|"
          "Strawberry Yogurt|Dark Chocolate Almond|Blueberry Yogurt", 2.99, 5.49, "6 ct|12 ct"),
        I("{} Protein Bars", "Chocolate Peanut Butter*2|Cookie Dough|Birthday Cake|Salted Caramel|"
          "Lemon", 5.99, 12.99, "4 ct|12 ct"),
        I("{}", "Blueberry Breakfast Bars|Strawberry Breakfast Bars|"
          "Almond Coconut Fruit and Nut Bars|"
          "Cranberry Almond Fruit and Nut Bars|Apple Cinnamon Soft Baked Bars|Date and Walnut Bars",
          2.99, 5.99, "5 ct|6 ct", mods="{} Variety Pack"),
    ], BREAKFAST, organic_rate=0.2),
    Aisle("breakfast", "spreads", [
        I("{}", "Creamy Peanut Butter*3|Crunchy Peanut Butter|Almond Butter|Cashew Butter|"
          "Sunflower Seed Butter|Chocolate Hazelnut Spread*2|Cookie Butter Spread", 2.49, 11.99,
          "12 oz|16 oz|28 oz"),
        I("{}", "Strawberry Preserves*2|Raspberry Jam|Concord Grape Jelly|Apricot Preserves|"
          "Wild Blueberry Jam|Orange Marmalade|Raw Wildflower Honey|Clover Honey|Lemon Curd|"
          "Fig Jam|Apple Butter", 2.49, 9.99, "10 oz|12 oz|18 oz"),
    ], ("Maple Hollow", "Morning Harvest", STORE_BRAND), organic_rate=0.25),
    # deli -----------------------------------------------------------------------------------
    Aisle("deli", "deli meats", [
        I("Sliced {}", "Oven Roasted Turkey Breast*3|Honey Ham*2|Black Forest Ham|Roast Beef|"
          "Genoa Salami|Pepperoni|Prosciutto|Mortadella|Smoked Turkey|Rotisserie Chicken Breast|"
          "Pastrami|Capicola|Soppressata|Bologna|Corned Beef|Mesquite Turkey", 3.99, 9.99,
          "3 oz|7 oz|8 oz"),
        I("{}", "Italian Charcuterie Sampler|Uncured Salami Sticks|Turkey Pepperoni Snack Pack",
          4.99, 12.99, "2 oz|6 oz"),
    ], DELI, organic_rate=0.15),
    Aisle("deli", "specialty cheeses", [
        I("{}", "Aged Manchego|Smoked Gouda|Havarti Cheese Slices|Burrata*2|"
          "Fresh Mozzarella Pearls|"
          "Parmigiano Reggiano*2|Blue Cheese Crumbles|Camembert|Aged Gruyere|Baby Swiss Cheese|"
          "Aged Asiago|Cheese Board Sampler|Marinated Mozzarella|Triple Creme Brie|"
          "Aged White Cheddar|Halloumi Grilling Cheese|Cotija Cheese|Goat Cheese Medallions|"
          "Gorgonzola Dolce|Taleggio|Fontina", 3.99, 14.99, "4 oz|6 oz|7 oz|8 oz"),
    ], ("Alpine Hollow", "Delicato", "Clover Lane Creamery", STORE_BRAND), organic_rate=0.1),
    Aisle("deli", "prepared meals", [
        I("{}", "Chicken Caesar Wrap|Turkey Club Sandwich|Italian Sub Sandwich|"
          "California Sushi Roll|Spicy Tuna Sushi Roll|Chicken Parmesan|Eggplant Parmesan|"
          "Meatballs in Marinara|Whole Rotisserie Chicken*3|Chicken Enchiladas|Beef Lasagna",
          5.99, 12.99, "each|8 pc"),
        I("{}", "Classic Potato Salad|Macaroni Salad|Pesto Pasta Salad|Greek Pasta Salad|"
          "Chicken Salad|Egg Salad|Tuna Salad|Fresh Chicken Noodle Soup|Tomato Bisque|"
          "Deli Macaroni and Cheese|Quinoa Power Salad|Broccoli Cheddar Soup|Fruit Salad Cup",
          2.99, 8.99, "8 oz|16 oz"),
    ], DELI),
    Aisle("deli", "dips hummus", [
        I("{} Hummus", "Classic*3|Roasted Red Pepper|Roasted Garlic|Spicy|Everything|Lemon Herb|"
          "Pine Nut", 2.99, 5.49, "10 oz|17 oz"),
        I("{}", "Classic Guacamole*2|Spicy Guacamole|Fresh Mild Salsa|Pico de Gallo|Mango Salsa|"
          "Salsa Verde|Tzatziki Dip|Spinach Artichoke Dip|French Onion Dip|Queso Dip|"
          "Baba Ganoush|Buffalo Chicken Dip|Whipped Feta Dip", 2.99, 6.49, "8 oz|12 oz|16 oz"),
    ], ("Delicato", "Corner Deli", "Olive Branch Kitchen", STORE_BRAND), organic_rate=0.15),
    # household ------------------------------------------------------------------------------
    Aisle("household", "cleaning", [
        I("{} All Purpose Cleaner", "Lemon*2|Lavender|Free and Clear|Eucalyptus", 2.99, 5.49,
          "32 fl oz", mods="{} Refill"),
        I("{}", "Glass Cleaner|Lemon Disinfecting Wipes*2|Fresh Scent Disinfecting Wipes|"
          "Bathroom Cleaner|Toilet Bowl Cleaner|Floor Cleaner|Stainless Steel Cleaner|"
          "Heavy Duty Scrub Sponges|Microfiber Cleaning Cloths|Multi-Surface Spray|Oven Cleaner|"
          "Concentrated Bleach|Linen Air Freshener|Citrus Air Freshener|Rubber Cleaning Gloves|"
          "Magic Eraser Sponges", 2.49, 9.99, "6 ct|32 fl oz|75 ct|121 fl oz"),
    ], HOUSEHOLD),
    Aisle("household", "laundry", [
        I("{} Laundry Detergent", "Original Scent*2|Free and Clear*2|Lavender|Spring Meadow|"
          "Cold Water Clean", 7.99, 16.99, "92 fl oz|150 fl oz", mods="High Efficiency {}"),
        I("{} Laundry Pods", "Fresh Scent|Free and Clear|Mountain Breeze", 9.99, 19.99,
          "42 ct|81 ct"),
        I("{}", "Fabric Softener|Outdoor Fresh Dryer Sheets|Unscented Dryer Sheets|"
          "Stain Remover Spray|Oxygen Bleach Powder|Wool Dryer Balls|Delicates Wash|"
          "Scent Booster Beads", 3.99, 12.99, "6 ct|22 fl oz|64 fl oz|120 ct"),
    ], HOUSEHOLD),
    Aisle("household", "paper goods", [
        I("{}", "Select-A-Size Paper Towels*3|Double Roll Paper Towels|Ultra Soft Toilet Paper*3|"
          "Ultra Strong Toilet Paper|Bamboo Toilet Paper|Facial Tissues|Lotion Facial Tissues|"
          "Paper Napkins|Heavy Duty Paper Plates", 2.49, 24.99, "4 ct|6 rolls|12 rolls",
          mods="{} Mega Pack"),
        I("{}", "Aluminum Foil|Plastic Wrap|Parchment Paper|Zip Sandwich Bags|Gallon Freezer Bags|"
          "Tall Kitchen Trash Bags*2|Large Trash Bags|Compostable Trash Bags|Snack Size Bags",
          2.49, 14.99, "45 ct|75 sq ft|100 ct"),
    ], HOUSEHOLD),
    Aisle("household", "dish care", [
        I("{} Dish Soap", "Lemon*2|Original|Free and Clear|Lavender|Grapefruit|Green Apple",
          2.49, 4.99, "19.4 fl oz|28 fl oz", mods="{} Refill"),
        I("{} Dishwasher Detergent Pods", "Fresh|Free and Clear|Lemon", 8.99, 17.99, "48 ct|80 ct"),
        I("{}", "Dishwasher Rinse Aid|Dishwasher Cleaner|Bamboo Dish Brush|Non-Scratch Sponges|"
          "Dish Drying Mat|Dishwasher Detergent Gel|Steel Wool Soap Pads", 2.99, 8.99,
          "each|6 ct|16 fl oz|45 fl oz"),
    ], HOUSEHOLD),
    # personal care --------------------------------------------------------------------------
    Aisle("personal care", "oral care", [
        I("{} Toothpaste", "Whitening*2|Cavity Protection*2|Sensitive|Charcoal|Kids Strawberry|"
          "Fluoride Free|Enamel Repair", 2.49, 6.99, "4.8 oz|6 oz", mods="Travel Size {}"),
        I("{} Toothbrush", "Soft*2|Medium|Kids|Bamboo", 1.99, 5.99, "2 ct|4 ct"),
        I("{}", "Alcohol Free Mouthwash|Fresh Mint Mouthwash|Whitening Mouthwash", 3.99, 9.99,
          "500 ml|1 liter"),
        I("{}", "Mint Dental Floss|Whitening Strips|Electric Toothbrush Heads|Floss Picks|"
          "Tongue Scraper", 2.99, 29.99, "each|3 ct|14 ct|90 ct"),
    ], ("BrightSmile", "Willow & Sage", STORE_BRAND)),
    Aisle("personal care", "hair care", [
        I("{} Shampoo", "Moisturizing*2|Clarifying|Volumizing|Tea Tree|Anti-Dandruff|Argan Oil|"
          "Coconut Milk", 3.99, 9.99, "12 fl oz|25 fl oz", mods="Travel Size {}"),
        I("{} Conditioner", "Moisturizing*2|Volumizing|Argan Oil|Tea Tree|Coconut Milk",
          3.99, 9.99, "12 fl oz|25 fl oz"),
        I("{}", "Dry Shampoo|Styling Hair Gel|Leave-In Conditioner|Curl Defining Cream|"
          "2-in-1 Shampoo and Conditioner|Hair Ties|Wide Tooth Comb", 2.99, 10.99,
          "each|4.3 oz|8 fl oz"),
    ], CARE),
    Aisle("personal care", "body care", [
        I("{} Body Wash", "Lavender*2|Coconut|Eucalyptus Mint|Unscented|Charcoal", 3.99, 8.99,
          "18 fl oz", mods="Travel Size {}"),
        I("{} Bar Soap", "Oatmeal|Shea Butter|Charcoal|Goat Milk", 2.99, 6.99, "3 ct|4 ct"),
        I("{}", "Foaming Lemon Hand Soap|Lavender Hand Soap|Daily Moisturizing Lotion|"
          "Shea Butter Body Lotion|Mineral Sunscreen SPF 30|Sunscreen Spray SPF 50|"
          "Gentle Face Wash|Hand Sanitizer Gel", 3.49, 14.99, "8 fl oz|12 fl oz|16 fl oz"),
        I("{}", "Lip Balm|Aluminum Free Deodorant|Cotton Swabs|Cotton Rounds|Shaving Cream",
          1.99, 7.99, "each|3 ct|100 ct"),
    ], CARE),
    Aisle("personal care", "vitamins supplements", [
        I("{}", "Daily Multivitamin*2|Women's Multivitamin|Men's Multivitamin|"
          "Vitamin D3 Softgels*2|"
          "Vitamin C Gummies|Fish Oil Omega-3|Probiotic Capsules|Magnesium Glycinate|"
          "Melatonin Gummies|Zinc Lozenges|Elderberry Gummies|Biotin Gummies|"
          "Kids Multivitamin Gummies|Iron Supplement|Turmeric Curcumin", 6.99, 24.99,
          "60 ct|90 ct|120 ct"),
        I("{}", "Collagen Peptides|Chocolate Whey Protein Powder|Vanilla Whey Protein Powder|"
          "Vanilla Plant Protein Powder|Electrolyte Drink Mix", 14.99, 39.99, "20 oz|2 lb"),
    ], ("Daily Dose", "Vital Leaf", STORE_BRAND)),
    # babies ---------------------------------------------------------------------------------
    Aisle("babies", "baby food", [
        I("{} Baby Food Pouch", "Apple Banana*2|Pear Spinach|Sweet Potato Carrot|Mango Kale|"
          "Blueberry Oat|Strawberry Beet|Apple Cinnamon Oat", 1.29, 1.99, "4 oz"),
        I("Stage 1 {} Puree", "Pea|Carrot|Apple|Banana|Butternut Squash", 0.99, 1.79, "2 x 2 oz"),
        I("{}", "Strawberry Apple Puffs|Sweet Potato Puffs|Mixed Berry Yogurt Melts|"
          "Banana Yogurt Melts|Teething Wafers|Toddler Cheddar Mac and Cheese|Baby Oatmeal Cereal|"
          "Toddler Veggie Crisps|Toddler Fruit Bars", 2.49, 4.99, "1 oz|1.5 oz|6 oz|8 oz"),
    ], BABY, organic_rate=0.45),
    Aisle("babies", "diapers wipes", [
        I("Size {} Diapers", "Newborn|1|2*2|3*2|4*2|5|6", 12.99, 29.99, "34 ct|68 ct|124 ct"),
        I("{} Baby Wipes", "Sensitive*3|Unscented*2|Water Based|Aloe", 2.99, 14.99, "72 ct|576 ct",
          mods="{} Refill Pack"),
        I("{}", "Overnight Diapers Size 4|Training Pants 2T-3T|Training Pants 3T-4T|Swim Diapers|"
          "Diaper Rash Cream|Diaper Pail Refills|Changing Pad Liners", 5.99, 24.99,
          "4 oz|3 ct|12 ct|20 ct"),
    ], ("Tiny Toes", "Cuddle Soft", STORE_BRAND), organic_rate=0.1),
    Aisle("babies", "baby formula", [
        I("{}", "Infant Formula with Iron*3|Sensitive Infant Formula*2|Gentle Infant Formula|"
          "Hypoallergenic Infant Formula|Toddler Formula|Soy Infant Formula|"
          "Goat Milk Infant Formula|Infant Formula Powder Stick Packs", 19.99, 44.99,
          "12.4 oz|22.5 oz|36 oz"),
        I("{}", "Ready to Feed Infant Formula|Infant Formula Bottles|Baby Electrolyte Drink|"
          "Infant Vitamin D Drops|Gripe Water", 6.99, 14.99, "6 ct|32 fl oz|1 liter"),
    ], ("Little Sprout", "Tiny Toes", STORE_BRAND), organic_rate=0.35),
    Aisle("babies", "baby bath care", [
        I("{}", "Tear Free Baby Shampoo and Wash*2|Lavender Baby Bath|Baby Lotion|Baby Oil|"
          "Baby Mineral Sunscreen|Baby Laundry Detergent|Baby Bottle Wash|Baby Nail Clippers|"
          "Soft Baby Hair Brush|Nasal Aspirator|Orthodontic Pacifiers|Anti-Colic Baby Bottles|"
          "Spill Proof Sippy Cup|Waterproof Bibs|Baby Hooded Towel|Baby Washcloths",
          2.99, 19.99, "each|2 ct|3 ct|9 fl oz|16 fl oz"),
    ], ("Cuddle Soft", "Tiny Toes", STORE_BRAND), organic_rate=0.15),
    # pets -----------------------------------------------------------------------------------
    Aisle("pets", "dog food", [
        I("{} Dry Dog Food", "Chicken and Rice*3|Lamb and Rice|Salmon and Sweet Potato|"
          "Grain Free Chicken|Puppy Chicken|Senior Chicken|Small Breed Turkey|Large Breed Beef|"
          "Healthy Weight Chicken", 12.99, 54.99, "5 lb|15 lb|30 lb"),
        I("{} Wet Dog Food", "Beef Stew|Chicken Dinner*2|Turkey and Vegetables|Lamb Stew|"
          "Chicken and Brown Rice", 1.99, 3.49, "13 oz", mods="{} 12 Pack"),
        I("{}", "Wet Dog Food Variety Pack|Chicken Dog Food Topper|Fresh Beef Dog Food Roll",
          4.99, 24.99, "4.5 oz|2 lb|12 ct"),
    ], ("Good Boy Kitchen", "Happy Tails", STORE_BRAND)),
    Aisle("pets", "cat food", [
        I("{} Dry Cat Food", "Indoor Chicken*2|Salmon|Kitten|Hairball Control|Ocean Fish|"
          "Senior Chicken|Grain Free Turkey", 7.99, 32.99, "3 lb|7 lb|16 lb"),
        I("{} Wet Cat Food", "Tuna Pate*2|Chicken Pate*2|Salmon Flakes|Turkey and Giblets|"
          "Ocean Whitefish|Beef in Gravy|Chicken in Gravy", 0.79, 1.49, "3 oz|5.5 oz",
          mods="{} 24 Pack"),
        I("{}", "Wet Cat Food Variety Pack|Kitten Milk Replacer|Chicken Cat Food Topper",
          5.99, 19.99, "8 fl oz|12 ct|24 ct"),
    ], ("Whisker Feast", "Happy Tails", STORE_BRAND)),
    Aisle("pets", "pet treats toys", [
        I("{}", "Peanut Butter Dog Biscuits*2|Chicken Jerky Dog Treats|Dental Dog Chews*2|"
          "Training Bites Dog Treats|Salmon Crunchy Cat Treats|Chicken Creamy Cat Treats|"
          "Bully Sticks|Rawhide-Free Chews|Sweet Potato Dog Chews|Freeze Dried Chicken Cat Treats|"
          "Catnip", 2.49, 16.99, "1 oz|6 oz|16 oz|30 ct"),
        I("{}", "Cat Toy Mice|Rope Dog Toy|Squeaky Ball Dog Toy|Feather Wand Cat Toy|"
          "Plush Squeaky Dog Toy|Tennis Balls for Dogs|Cat Scratching Pad", 3.99, 14.99,
          "each|3 ct"),
    ], PETS),
    Aisle("pets", "pet care", [
        I("{} Cat Litter", "Clumping Unscented*2|Clumping Scented|Pine Pellet|Crystal|"
          "Lightweight Clumping|Multi-Cat Clumping", 7.99, 24.99, "8 lb|20 lb|40 lb"),
        I("{}", "Dog Waste Bags*2|Puppy Training Pads|Pet Stain and Odor Remover|"
          "Flea and Tick Shampoo|Oatmeal Dog Shampoo|Litter Box Liners|Pet Hair Lint Roller|"
          "Dog Dental Water Additive|Stainless Steel Pet Bowl|Dog Grooming Wipes", 3.99, 19.99,
          "each|50 ct|120 ct|16 fl oz|32 fl oz"),
    ], PETS),
    # alcohol --------------------------------------------------------------------------------
    Aisle("alcohol", "beer", [
        I("{}", "Hazy IPA*3|West Coast IPA|Double IPA|Session IPA|Mexican Lager Beer*2|"
          "Czech Pilsner|Amber Lager Beer|Light Lager Beer*2|American Pale Ale|Brown Ale|"
          "Belgian White Ale|Irish Dry Stout|Oatmeal Stout|Hefeweizen Wheat Beer|Robust Porter|"
          "Raspberry Sour Ale|Dry Apple Hard Cider|Lime Hard Seltzer|Black Cherry Hard Seltzer|"
          "Non-Alcoholic IPA|Pumpkin Ale|Kolsch Style Beer", 8.99, 19.99,
          "4 pack 16 fl oz cans|6 pack 12 fl oz cans|12 pack 12 fl oz cans",
          mods="{} Variety Pack"),
    ], ("Copper Kettle Brewing", "Three Rivers Brewing", "Lakeshore Brewing Co."),
        attributes=AGE_21),
    Aisle("alcohol", "red wine", [
        I("{}", "Cabernet Sauvignon*3|Pinot Noir*2|Merlot|Malbec|Old Vine Zinfandel|Syrah|"
          "Chianti Classico*2|California Red Blend Wine|Tempranillo|Sangiovese|"
          "Montepulciano d'Abruzzo|Cotes du Rhone|Rioja Crianza|Barbera d'Asti|Nero d'Avola|"
          "Primitivo|Beaujolais|Petite Sirah|Grenache", 8.99, 34.99, "750 ml|1.5 liter",
          mods="Reserve {}"),
    ], ("Hillside Cellars", "Vista Verde Vineyards", "Casa Nonna Wines"), organic_rate=0.1,
        attributes=AGE_21),
    Aisle("alcohol", "white wine sparkling", [
        I("{}", "Chardonnay*2|Sauvignon Blanc*2|Pinot Grigio*2|Dry Riesling|Moscato d'Asti|"
          "Dry Rose Wine*2|Prosecco*2|Brut Sparkling Wine|Cava Brut|Vinho Verde|Gewurztraminer|"
          "Albarino|Chenin Blanc|Sparkling Rose Wine|Gruner Veltliner|White Bordeaux|Viognier",
          8.99, 29.99, "4 pack 187 ml|750 ml|1.5 liter", mods="Reserve {}"),
    ], ("Hillside Cellars", "Vista Verde Vineyards", "Seaglass Estate"), organic_rate=0.1,
        attributes=AGE_21),
    Aisle("alcohol", "spirits", [
        I("{}", "London Dry Gin|Silver Tequila*2|Reposado Tequila|"
          "Kentucky Straight Bourbon Whiskey*2|"
          "Rye Whiskey|Irish Whiskey|Blended Scotch Whisky|Premium Vodka*2|Citrus Vodka|"
          "Spiced Rum|White Rum|Coffee Liqueur|Triple Sec|Mezcal Joven|Amaretto|Aged Dark Rum|"
          "Aperitivo Bitter Liqueur", 12.99, 49.99, "375 ml|750 ml|1.75 liter",
          mods="Small Batch {}"),
        I("Canned {} Cocktail", "Margarita|Gin and Tonic|Vodka Soda|Paloma", 9.99, 16.99,
          "4 pack 12 fl oz cans"),
    ], ("Stonebridge Distillery", "Red Mesa Spirits", "Northern Lights Distilling"),
        attributes=AGE_21),
]
# fmt: on


# -- demo users ----------------------------------------------------------------------------
# Each user: staples (bought in most orders), occasional items, and an order cadence.
# Titles are exact catalog titles; the generator always includes them in the catalog.


@dataclass(frozen=True)
class Profile:
    user_id: str
    staples: tuple[str, ...]
    occasional: tuple[str, ...]
    orders: int
    every_days: int
    preferences: tuple[str, ...] = ()
    notes: str | None = None
    age_verified: bool = False


# fmt: off
PROFILES = [
    Profile(
        "demo-1",
        staples=("Spaghetti Pasta", "Marinara Pasta Sauce", "Grated Parmesan Cheese",
                 "Extra Virgin Olive Oil", "Garlic", "Fresh Basil", "Fresh Mozzarella Ball",
                 "French Baguette"),
        occasional=("Penne Rigate Pasta", "Rigatoni Pasta", "Sweet Italian Sausage",
                    "Whole Peeled San Marzano Tomatoes", "Chianti Classico", "Basil Pesto",
                    "Whole Milk Ricotta Cheese", "Sliced Prosciutto", "Parmigiano Reggiano",
                    "Roma Tomatoes", "Baby Arugula", "Arborio Rice", "Lasagna Noodles",
                    "Burrata", "Yellow Onions", "Red Wine Vinegar", "Tiramisu"),
        orders=7, every_days=6,
        preferences=("Italian cooking", "fresh pasta nights"),
        notes="Cooks dinner from scratch most weeknights.",
        age_verified=True,
    ),
    Profile(
        "demo-2",
        staples=("Size 3 Diapers", "Sensitive Baby Wipes", "Apple Banana Baby Food Pouch",
                 "Infant Formula with Iron", "Whole Milk", "Bananas"),
        occasional=("Strawberry Apple Puffs", "Mixed Berry Yogurt Melts", "Teething Wafers",
                    "Tear Free Baby Shampoo and Wash", "Baby Laundry Detergent",
                    "Stage 1 Carrot Puree", "Sweet Potato Carrot Baby Food Pouch",
                    "Plain Whole Milk Yogurt", "Blueberries", "Select-A-Size Paper Towels",
                    "Free and Clear Laundry Detergent", "Diaper Rash Cream", "Large Brown Eggs",
                    "Boneless Skinless Chicken Breasts", "Size 4 Diapers", "Whole Wheat Bread"),
        orders=8, every_days=5,
        preferences=("baby essentials", "fragrance free"),
        notes="Household with a 9-month-old.",
    ),
    Profile(
        "demo-3",
        staples=("Plain Greek Yogurt", "Honey Almond Granola", "Blueberries",
                 "Unsweetened Almond Milk", "Old Fashioned Rolled Oats", "Bananas",
                 "Green Tea"),
        occasional=("Strawberries", "Chia Seeds", "Large Brown Eggs", "Raw Wildflower Honey",
                    "Steel Cut Oats", "Raspberries", "Almond Butter", "Whole Wheat Bread",
                    "Vanilla Greek Yogurt", "Hass Avocados", "Frozen Mixed Berries",
                    "Ground Flaxseed", "Cold Pressed Green Juice", "Hemp Hearts",
                    "Low Sugar Granola", "Baby Spinach"),
        orders=6, every_days=7,
        preferences=("healthy breakfast", "low sugar", "organic when possible"),
    ),
    Profile(
        "demo-4",
        staples=("Chicken and Rice Dry Dog Food", "Clumping Unscented Cat Litter",
                 "Tuna Pate Wet Cat Food", "Chicken Pate Wet Cat Food"),
        occasional=("Peanut Butter Dog Biscuits", "Dental Dog Chews", "Salmon Crunchy Cat Treats",
                    "Dog Waste Bags", "Pet Stain and Odor Remover", "Squeaky Ball Dog Toy",
                    "Indoor Chicken Dry Cat Food", "Select-A-Size Paper Towels",
                    "Large White Eggs", "2% Reduced Fat Milk", "Sourdough Sandwich Loaf",
                    "Ultra Soft Toilet Paper", "Pet Hair Lint Roller", "Bananas"),
        orders=6, every_days=10,
        preferences=("pet supplies",),
        notes="One dog, two cats.",
    ),
    Profile(
        "demo-5",
        staples=("Sea Salt Potato Chips", "Chocolate Chip Cookies", "Cola Soda",
                 "Pepperoni Pizza", "Peanut Butter Cups"),
        occasional=("Restaurant Style Tortilla Chips", "Classic Guacamole", "Cheese Puffs",
                    "Cookies and Cream Ice Cream", "Gummy Bears",
                    "Sour Cream and Onion Potato Chips",
                    "Pepperoni Pizza Rolls", "Hazy IPA", "Mexican Lager Beer", "Diet Cola Soda",
                    "Original Energy Drink", "White Cheddar Popcorn", "Cheddar Cheese Crackers",
                    "Breaded Chicken Nuggets", "Classic Trail Mix", "Fresh Mild Salsa"),
        orders=7, every_days=4,
        preferences=("snacks", "game night"),
        notes="Buys beer sometimes, but age is not verified in this session.",
    ),
    Profile("demo-6", staples=(), occasional=(), orders=0, every_days=7,
            notes="New customer: no purchase history yet."),
]
# fmt: on
MUST_HAVE = frozenset(t for p in PROFILES for t in (*p.staples, *p.occasional))


# -- generation ----------------------------------------------------------------------------


def _variants(item: Item) -> list[tuple[str, float]]:
    out = []
    for v in item.variants.split("|"):
        name, _, weight = v.partition("*")
        out.append((item.template.format(name.strip()), float(weight or 1)))
    return out


# Price factors of title modifiers: bigger packs cost more, minis less.
MOD_PRICE = {"Family": 1.6, "Pack": 1.8, "Mega": 1.7, "Mini": 0.7, "Travel": 0.45, "Reserve": 1.5}


def _mod_factor(mod: str) -> float:
    return next((f for word, f in MOD_PRICE.items() if word in mod), 1.1)


def _price(rng: random.Random, item: Item, size_index: int, factor: float) -> float:
    """A price in the item's range, in the band of the chosen size, ending in .49 or .99."""
    band = (item.high - item.low) / len(item.sizes.split("|"))
    raw = (item.low + band * (size_index + rng.random())) * factor
    return round(max(round(raw * 2) / 2 - 0.01, 0.49), 2)


@dataclass(frozen=True)
class Candidate:
    title: str
    weight: float
    item: Item
    organic: bool = False
    mod: str = ""


def build_catalog(rng: random.Random) -> list[Product]:
    """Per aisle: all variant titles (plus organic and modified ones), a seeded sample."""
    products: list[Product] = []
    titles: set[str] = set()
    for aisle in AISLES:
        candidates: list[Candidate] = []
        for item in aisle.items:
            for title, weight in _variants(item):
                candidates.append(Candidate(title, weight, item))
                if aisle.organic_rate and rng.random() < aisle.organic_rate * 2:
                    candidates.append(
                        Candidate(f"Organic {title}", weight * 0.6, item, organic=True)
                    )
                for mod in filter(None, item.mods.split("|")):
                    if rng.random() < 0.4:
                        candidates.append(Candidate(mod.format(title), weight * 0.5, item, mod=mod))
        must = [c for c in candidates if c.title in MUST_HAVE]
        rest = [c for c in candidates if c.title not in MUST_HAVE]
        rng.shuffle(rest)
        target = rng.randint(18, 25)
        chosen = sorted(must + rest[: max(target - len(must), 0)], key=lambda c: c.title)
        for c in chosen:
            if c.title in titles:
                continue
            titles.add(c.title)
            brand: str | None
            if c.organic and rng.random() < 0.5:
                brand = aisle.organic_brand
            elif not c.organic and rng.random() < aisle.unbranded_rate:
                brand = None
            else:
                brand = rng.choice(aisle.brands)
            factor = (1.3 if c.organic else 1.0) * (0.85 if brand == STORE_BRAND else 1.0)
            if c.mod:
                factor *= _mod_factor(c.mod)
            sizes = c.item.sizes.split("|")
            size_index = rng.randrange(len(sizes))
            attributes = {"size": sizes[size_index], **aisle.attributes}
            if c.organic:
                attributes["organic"] = "yes"
            popularity = max(1, round(c.weight * 120 * rng.lognormvariate(0.0, 0.8)))
            products.append(
                Product(
                    id=f"p{len(products) + 1:04d}",
                    title=c.title,
                    department=aisle.department,
                    aisle=aisle.name,
                    brand=brand,
                    price=_price(rng, c.item, size_index, factor),
                    popularity=float(popularity),
                    attributes=attributes,
                )
            )
    return products


def build_users(rng: random.Random, catalog: Catalog) -> list[UserContext]:
    by_title = {p.title: p.id for p in catalog}
    start = datetime(2026, 3, 2, 9, 0)
    users = []
    for prof in PROFILES:
        missing = [t for t in (*prof.staples, *prof.occasional) if t not in by_title]
        if missing:
            raise SystemExit(f"{prof.user_id}: titles not in the catalog: {missing}")
        history: list[Interaction] = []
        for n in range(1, prof.orders + 1):
            when = start + timedelta(
                days=n * prof.every_days + rng.randint(-1, 1), hours=rng.randint(0, 10)
            )
            basket = [t for t in prof.staples if rng.random() < 0.75]
            basket += rng.sample(prof.occasional, k=min(len(prof.occasional), rng.randint(3, 6)))
            for title in dict.fromkeys(basket):
                history.append(
                    Interaction(
                        product_id=by_title[title],
                        order_number=n,
                        timestamp=when,
                        quantity=2 if title in prof.staples and rng.random() < 0.2 else 1,
                    )
                )
        users.append(
            UserContext(
                user_id=prof.user_id,
                history=history,
                preferences=list(prof.preferences),
                notes=prof.notes,
                age_verified=prof.age_verified,
            )
        )
    return users


def users_json(users: list[UserContext]) -> str:
    """A JSON list of users, one history interaction per line (diff-friendly)."""
    blocks = []
    for user in users:
        data = user.model_dump(mode="json", exclude_defaults=True)
        history = data.pop("history", [])
        head = json.dumps(data, ensure_ascii=False)[:-1]
        rows = ",\n    ".join(json.dumps(h) for h in history)
        blocks.append(f'  {head}, "history": [' + (f"\n    {rows}\n  ]}}" if rows else "]}"))
    return "[\n" + ",\n".join(blocks) + "\n]\n"


def write(out_dir: Path) -> tuple[Path, Path]:
    rng = random.Random(SEED)
    catalog = Catalog(build_catalog(rng), name="demo")
    users = build_users(rng, catalog)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "demo_catalog.csv"
    users_path = out_dir / "demo_users.json"
    catalog.to_csv(csv_path)
    users_path.write_text(users_json(users), encoding="utf-8")
    return csv_path, users_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    csv_path, users_path = write(args.out_dir)
    catalog = Catalog.from_csv(csv_path)
    print(
        f"wrote {csv_path} ({len(catalog)} products, {len(catalog.departments)} departments, "
        f"{len(catalog.aisles)} aisles) and {users_path}"
    )


if __name__ == "__main__":
    main()
