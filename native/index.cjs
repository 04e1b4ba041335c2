// Where the built addon lies; packages/engine/src/native/load-native.ts is what loads it.
const path = require('node:path');

module.exports = {
  bindingPath: path.join(__dirname, 'build', 'Release', 'flotilla_native.node'),
};
