# Godot 3.2.3 WebSocketClient against a lunanet server (run headless:
# `godot3-server --no-window -s godot3_client.gd`, URL in LUNANET_WS_URL).
# Prints "RESULT ..." lines and quits with 0 once the server closed cleanly,
# 1 on any failure or after 20 s.
extends SceneTree

var client = WebSocketClient.new()
var elapsed = 0.0
var step = 0
var failed = false

func fail(msg):
	print("RESULT FAIL ", msg)
	failed = true
	quit(1)

func _init():
	client.connect("connection_established", self, "_on_open")
	client.connect("connection_error", self, "_on_error")
	client.connect("connection_closed", self, "_on_closed")
	client.connect("data_received", self, "_on_data")
	client.connect("server_close_request", self, "_on_close_request")
	var url = OS.get_environment("LUNANET_WS_URL")
	var err = client.connect_to_url(url, PoolStringArray(["chat"]))
	if err != OK:
		fail("connect_to_url: %d" % err)

func _idle(delta):
	client.poll()
	elapsed += delta
	if elapsed > 20.0 and not failed:
		fail("timeout at step %d" % step)
	return false

func send_text(s):
	var peer = client.get_peer(1)
	peer.set_write_mode(WebSocketPeer.WRITE_MODE_TEXT)
	peer.put_packet(s.to_utf8())

func _on_open(protocol):
	print("RESULT open protocol=", protocol)
	send_text("hello from godot 3")

func _on_data():
	var peer = client.get_peer(1)
	var pkt = peer.get_packet()
	var is_string = peer.was_string_packet()
	if step == 0:
		if not is_string or pkt.get_string_from_utf8() != "hello from godot 3":
			fail("text echo")
			return
		print("RESULT text ok")
		step = 1
		peer.set_write_mode(WebSocketPeer.WRITE_MODE_BINARY)
		peer.put_packet(PoolByteArray([1, 2, 3, 0, 255]))
	elif step == 1:
		if is_string or pkt != PoolByteArray([1, 2, 3, 0, 255]):
			fail("binary echo")
			return
		print("RESULT binary ok")
		step = 2
		peer.put_var({"pos": Vector2(1.5, -2), "name": "godot"})
	elif step == 2:
		var v = bytes2var(pkt)
		if typeof(v) != TYPE_DICTIONARY or v["name"] != "godot" or v["pos"] != Vector2(1.5, -2):
			fail("put_var echo: %s" % str(v))
			return
		print("RESULT var ok")
		step = 3
		send_text("close:4005:godot bye")

func _on_close_request(code, reason):
	print("RESULT close_request ", code, " ", reason)

func _on_closed(was_clean):
	print("RESULT closed clean=", was_clean)
	if step == 3 and was_clean:
		quit(0)
	else:
		fail("closed at step %d" % step)

func _on_error():
	fail("connection_error")
