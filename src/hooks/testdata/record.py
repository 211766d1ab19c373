import http.server, json, sys, os
n = [0]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        n[0] += 1
        t = json.loads(body)["Type"]
        open(f"{n[0]:02d}-{t}.json", "wb").write(body)
        open(f"{n[0]:02d}-{t}.headers", "w").write(str(self.headers))
        out = b'{}'
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
