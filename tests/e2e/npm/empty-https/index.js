// Intentionally empty: require('https') resolves to Node's built-in module.
