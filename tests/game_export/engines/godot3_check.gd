# Run by tests/test_export_godot_engine.py as: godot3-server --path PROJECT -s godot3_check.gd
# Loads every SpriteFrames .tres named in the project's lorastrap_check.json with the engine's own
# loader and prints what the engine sees, frame by frame, as one JSON line.
extends SceneTree


func _frame(texture):
	var record = {"class": texture.get_class() if texture else null}
	if not (texture is AtlasTexture):
		return record
	var atlas = texture.atlas
	record["atlas"] = atlas.resource_path if atlas else null
	if atlas == null:
		return record
	record["atlas_size"] = [atlas.get_width(), atlas.get_height()]
	var r = texture.region
	record["region"] = [r.position.x, r.position.y, r.size.x, r.size.y]
	var m = texture.margin
	record["margin"] = [m.position.x, m.position.y, m.size.x, m.size.y]
	record["size"] = [texture.get_width(), texture.get_height()]
	record["filter_clip"] = texture.filter_clip
	# The imported texture's own pixels inside the region: opaque ones, counted by the engine.
	var image = atlas.get_data()
	var opaque = -1
	if image != null:
		opaque = 0
		image.lock()
		for y in range(int(r.position.y), int(r.position.y + r.size.y)):
			for x in range(int(r.position.x), int(r.position.x + r.size.x)):
				if image.get_pixel(x, y).a > 0.5:
					opaque += 1
		image.unlock()
	record["opaque"] = opaque
	return record


func _init():
	var file = File.new()
	file.open("res://lorastrap_check.json", File.READ)
	var paths = parse_json(file.get_as_text())
	file.close()
	var out = []
	for path in paths:
		var frames = load(path)
		var record = {"path": path, "class": frames.get_class() if frames else null, "animations": []}
		if frames is SpriteFrames:
			for name in frames.get_animation_names():
				var anim = {"name": name, "speed": frames.get_animation_speed(name),
						"loop": frames.get_animation_loop(name), "frames": []}
				for i in range(frames.get_frame_count(name)):
					anim["frames"].append(_frame(frames.get_frame(name, i)))
				record["animations"].append(anim)
		out.append(record)
	print("LORASTRAP_RESULT " + to_json(out))
	quit()
