# Godot 3.2+ headless client for tests/godot3_variant.rs:
#   godot3-server --no-window -s variant_client.gd   (env LUNANET_PORT)
# 1. put_var's one value of every 3.x type (and an object id) to the lunanet
#    server, which decodes each and echoes it re-encoded; checks every echo is
#    byte-identical to var2bytes(value) and decodes equal to the value.
# 2. Sends "END"; lunanet then sends its own construction of the same values;
#    checks each with typeof and == (deep, element by element for containers).
# Prints "RESULT OK <n>" or "RESULT FAIL <reasons>" and quits with 0 / 1.
extends SceneTree

var fails = []
var deadline = 0

func values():
	return [
		null, true, false, 42, -7, 1099511627776, -2147483649, 2.5, 0.1, "héllo", "",
		Vector2(1.5, -2), Rect2(1, 2, 3, 4), Vector3(1, 2, 3),
		Transform2D(Vector2(1, 2), Vector2(3, 4), Vector2(5, 6)),
		Plane(1, 0, 0, 5), Quat(0, 0, 0, 1), AABB(Vector3(1, 2, 3), Vector3(4, 5, 6)),
		Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9)),
		Transform(Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9)), Vector3(10, 11, 12)),
		Color(1, 0, 0, 1), NodePath("/root/a/b:c:d"), RID(),
		{"a": 1, 2: [3, "x"], Vector2(1, 1): null}, [1, "x", 2.5, [null]], [],
		PoolByteArray([1, 2, 3]), PoolIntArray([1, -2, 3]), PoolRealArray([0.5, 1.5]),
		PoolStringArray(["ab", "", "日本"]), PoolVector2Array([Vector2(1, 2), Vector2(3, 4)]),
		PoolVector3Array([Vector3(1, 2, 3)]), PoolColorArray([Color(0, 0.5, 1, 1)]),
	]

func deep_eq(a, b):
	if typeof(a) != typeof(b):
		return false
	if typeof(a) == TYPE_ARRAY:
		if a.size() != b.size():
			return false
		for i in range(a.size()):
			if not deep_eq(a[i], b[i]):
				return false
		return true
	if typeof(a) == TYPE_DICTIONARY:
		if a.size() != b.size():
			return false
		var ka = a.keys()
		var kb = b.keys()
		for i in range(ka.size()):
			if not deep_eq(ka[i], kb[i]) or not deep_eq(a[ka[i]], b[kb[i]]):
				return false
		return true
	if typeof(a) == TYPE_RID:
		return a.get_id() == b.get_id()
	return a == b

# Godot 3.2 leaves garbage in NodePath padding (godot#44999), so var2bytes of
# a NodePath is not deterministic: zero the padding before comparing.
func canon(b):
	if b.size() < 16 or b[0] != TYPE_NODE_PATH:
		return b
	var out = PoolByteArray(b)
	var count = (b[4] | b[5] << 8 | b[6] << 16 | (b[7] & 0x7f) << 24) + (b[8] | b[9] << 8 | b[10] << 16 | b[11] << 24)
	var pos = 16
	for i in range(count):
		var l = b[pos] | b[pos + 1] << 8 | b[pos + 2] << 16 | b[pos + 3] << 24
		pos += 4 + l
		while pos % 4 != 0:
			out[pos] = 0
			pos += 1
	return out

func wait_bytes(tcp, n):
	while tcp.get_available_bytes() < n:
		if OS.get_ticks_msec() > deadline or tcp.get_status() != StreamPeerTCP.STATUS_CONNECTED:
			return false
		OS.delay_msec(2)
	return true

func _init():
	deadline = OS.get_ticks_msec() + 30000
	var port = int(OS.get_environment("LUNANET_PORT"))
	var tcp = StreamPeerTCP.new()
	if tcp.connect_to_host("127.0.0.1", port) != OK:
		report(["connect_to_host failed"], 0)
		return
	while tcp.get_status() == StreamPeerTCP.STATUS_CONNECTING and OS.get_ticks_msec() < deadline:
		OS.delay_msec(2)
	if tcp.get_status() != StreamPeerTCP.STATUS_CONNECTED:
		report(["not connected: status %d" % tcp.get_status()], 0)
		return
	var node = Node.new()
	var sent = values()
	sent.append(node)
	for v in sent:
		tcp.put_var(v)
	tcp.put_var("END")
	var checked = 0
	# 1. Echoes: raw frames, compared byte for byte with var2bytes.
	for i in range(sent.size()):
		var v = sent[i]
		if not wait_bytes(tcp, 4):
			fails.append("echo %d: timed out" % i)
			break
		var n = tcp.get_u32()
		if not wait_bytes(tcp, n):
			fails.append("echo %d: frame timed out" % i)
			break
		var got = tcp.get_data(n)
		var raw = got[1]
		# lunanet's padding is zero: raw must be canonical already.
		if got[0] != OK or raw != canon(raw) or raw != canon(var2bytes(v)):
			fails.append("echo %d (type %d): bytes %s != %s" % [i, typeof(v), str(Array(raw)), str(Array(var2bytes(v)))])
			continue
		var back = bytes2var(raw)
		if i == sent.size() - 1:
			if not (back is EncodedObjectAsID) or back.get_object_id() != node.get_instance_id():
				fails.append("echo object id: %s" % str(back))
		elif not deep_eq(back, v):
			fails.append("echo %d (type %d): value %s != %s" % [i, typeof(v), str(back), str(v)])
		checked += 1
	# The END marker's echo.
	if wait_bytes(tcp, 4):
		var n = tcp.get_u32()
		if wait_bytes(tcp, n):
			tcp.get_data(n)
	# 2. lunanet's own values, through get_var.
	var want = values()
	for i in range(want.size()):
		if not wait_bytes(tcp, 4):
			fails.append("value %d from lunanet: timed out" % i)
			break
		var got = tcp.get_var()
		if typeof(got) != typeof(want[i]):
			fails.append("value %d from lunanet: typeof %d != %d (%s)" % [i, typeof(got), typeof(want[i]), str(got)])
		elif not deep_eq(got, want[i]):
			fails.append("value %d from lunanet: %s != %s" % [i, str(got), str(want[i])])
		else:
			checked += 1
	node.free()
	tcp.disconnect_from_host()
	report(fails, checked)

func report(f, checked):
	if f.empty():
		print("RESULT OK %d" % checked)
		quit(0)
	else:
		print("RESULT FAIL " + PoolStringArray(f).join(" | "))
		quit(1)
