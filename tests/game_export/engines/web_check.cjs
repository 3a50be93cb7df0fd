// Run by tests/game_export/test_export_web_engines.py as:
//   node web_check.cjs NODE_DIR EXPORT_DIR...
// NODE_DIR holds node_modules with pixi.js, phaser (4) and phaser3 (npm alias of Phaser 3).
// For every page JSON in each EXPORT_DIR it prints, as one JSON line, what the engines' own parsers made
// of it: PixiJS 8 `Spritesheet.parse` (textures, default anchors, animations) and, for Phaser 3
// and 4, the real TextureManager.addAtlas (what `load.atlas` / `load.aseprite` call with the
// loaded image and JSON) and AnimationManager.createFromAseprite.
// Only what the engines need from a browser is stubbed: the page image is {width, height} read
// from the PNG header, and Phaser's device detection gets a minimal window/document at require time.
'use strict';

const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const [nodeDir, ...exportDirs] = process.argv.slice(2);
const requireFrom = createRequire(path.join(nodeDir, 'package.json'));
const packageDir = (name) => path.join(nodeDir, 'node_modules', name);
const versionOf = (name) => JSON.parse(fs.readFileSync(path.join(packageDir(name), 'package.json'), 'utf8')).version;

function pngSize(file) {
  const b = fs.readFileSync(file);
  // The IHDR chunk follows the 8-byte signature: width and height, big-endian.
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

function rect(r) {
  return r ? [r.x, r.y, r.width, r.height] : null;
}

function pixiCheck(pixi, data, size) {
  const source = new pixi.TextureSource({ width: size.width, height: size.height, resolution: 1 });
  const sheet = new pixi.Spritesheet(new pixi.Texture({ source }), data);
  sheet.parseSync();
  const textures = {};
  for (const [name, t] of Object.entries(sheet.textures)) {
    textures[name] = {
      frame: rect(t.frame), orig: rect(t.orig), trim: rect(t.trim),
      anchor: t.defaultAnchor ? [t.defaultAnchor.x, t.defaultAnchor.y] : null,
      size: [t.width, t.height], label: t.label,
    };
  }
  const animations = {};
  for (const [name, list] of Object.entries(sheet.animations)) {
    animations[name] = list.map((t) => (t ? t.label : null));
  }
  return { resolution: sheet.resolution, textures, animations };
}

function phaserLoader(pkg) {
  const dir = packageDir(pkg);
  const TextureManager = require(path.join(dir, 'src/textures/TextureManager.js'));
  const AnimationManager = require(path.join(dir, 'src/animations/AnimationManager.js'));
  const BaseCache = require(path.join(dir, 'src/cache/BaseCache.js'));
  const EventEmitter = requireFrom('eventemitter3');
  return function check(key, data, size, aseprite) {
    const game = { events: new EventEmitter(), renderer: null, config: { antialias: true },
                   cache: { json: new BaseCache() } };
    game.textures = new TextureManager(game);
    const anims = new AnimationManager(game);
    anims.boot();
    const texture = game.textures.addAtlas(key, size, data);
    const frames = {};
    for (const name of texture.getFrameNames()) {
      const f = texture.get(name);
      frames[name] = {
        cut: [f.cutX, f.cutY, f.cutWidth, f.cutHeight], real: [f.realWidth, f.realHeight],
        trimmed: f.trimmed, spriteSource: [f.x, f.y], customPivot: f.customPivot,
        pivot: [f.pivotX, f.pivotY],
      };
    }
    const out = { source: [texture.source[0].width, texture.source[0].height], frames };
    if (aseprite) {
      game.cache.json.add(key, data);
      out.animations = anims.createFromAseprite(key).map((a) => ({
        key: a.key, frameRate: a.frameRate, duration: a.duration, repeat: a.repeat,
        frames: a.frames.map((f) => ({ texture: f.textureKey, frame: f.textureFrame, duration: f.duration })),
      }));
    }
    return out;
  };
}

// Every page JSON of every export folder: key "FOLDER/FILE".
const pages = [];
for (const dir of exportDirs) {
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json') && !f.endsWith('_export.json')).sort()) {
    const data = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    pages.push({ key: `${path.basename(dir)}/${file}`, aseprite: file.endsWith('.aseprite.json'),
                 data, size: pngSize(path.join(dir, data.meta.image)) });
  }
}

// PixiJS first, with nothing stubbed but the navigator it reads at import time (node 20 has none).
if (typeof navigator === 'undefined') globalThis.navigator = { userAgent: 'node' };
const pixi = requireFrom('pixi.js');
const result = { versions: { 'pixi.js': versionOf('pixi.js') }, pixi: {}, phaser: {} };
for (const page of pages) {
  if (!page.aseprite) result.pixi[page.key] = pixiCheck(pixi, page.data, page.size);
}

// Phaser's device detection touches window/document when its modules load.
const anything = new Proxy(function () {}, {
  get: (t, k) => (k === Symbol.toPrimitive ? () => 0 : k === 'then' ? undefined : anything),
  apply: () => anything, construct: () => anything, set: () => true, has: () => true,
});
globalThis.window = globalThis;
globalThis.document = anything;
globalThis.HTMLCanvasElement = globalThis.HTMLCanvasElement || class {};
globalThis.Image = globalThis.Image || class {};
for (const pkg of ['phaser3', 'phaser']) {
  const check = phaserLoader(pkg);
  result.versions[pkg] = versionOf(pkg);
  result.phaser[pkg] = {};
  for (const page of pages) {
    result.phaser[pkg][page.key] = check(page.key, page.data, page.size, page.aseprite);
  }
}
process.stdout.write('LORASTRAP_RESULT ' + JSON.stringify(result) + '\n');
