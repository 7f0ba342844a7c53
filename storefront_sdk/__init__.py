"""storefront_sdk: personalized storefront pages from a cascade of generative models."""
