// The ws README's "server broadcast" example: every message goes to every
// open client, the sender included. Only the port is read from the command
// line, and the process says when it listens so that the bench can wait for it.
import WebSocket, { WebSocketServer } from 'ws';

const port = Number(process.argv[2] || 8080);
const wss = new WebSocketServer({ host: '127.0.0.1', port });

wss.on('connection', function connection(ws) {
  ws.on('error', console.error);

  ws.on('message', function message(data, isBinary) {
    wss.clients.forEach(function each(client) {
      if (client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    });
  });
});

wss.on('listening', () => console.log(`listening on ${port}`));
