// Placeholder so the target builds until the loader lands.
