// Intentionally empty: require('http') resolves to Node's built-in module.
