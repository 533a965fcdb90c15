"""A WebSocket server that answers the handshake, reads the first message (the start message) and then reads
almost nothing: a small receive buffer (SO_RCVBUF) makes TCP back up within a few KB, as a slow transcription
server behind a thin link would. Prints its port, then "connected" per connection. Used by test/e2e streaming tests.
Usage: python3 slow-ws-server.py [bytes_per_second]"""
import base64, hashlib, socket, sys, threading, time

RATE = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
srv.bind(('127.0.0.1', 0))
srv.listen(8)
print(srv.getsockname()[1], flush=True)

def serve(conn):
    req = b''
    while b'\r\n\r\n' not in req:
        chunk = conn.recv(1024)
        if not chunk:
            return
        req += chunk
    key = ''
    for line in req.decode('latin1').split('\r\n'):
        if line.lower().startswith('sec-websocket-key:'):
            key = line.split(':', 1)[1].strip()
    accept = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
    conn.sendall(('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                  'Sec-WebSocket-Accept: %s\r\n\r\n' % accept).encode())
    print('connected', flush=True)
    total = 0
    while True:
        time.sleep(0.1)
        try:
            data = conn.recv(max(1, RATE // 10))
        except OSError:
            return
        if not data:
            return
        total += len(data)

while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
