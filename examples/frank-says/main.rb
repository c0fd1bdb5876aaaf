# frank-says: the Sinatra service of the OpenFaaS "stateless microservices" tutorial,
# unchanged in spirit, run by faasd as a plain process. faasd passes the port in PORT and
# routes requests here once /tmp/.lock exists; /tmp is this replica's own.
require 'sinatra'

LOCK = '/tmp/.lock'

set :bind, '127.0.0.1'
set :port, Integer(ENV.fetch('PORT', '8080'))
set :server, 'puma'
# Puma re-raises SIGTERM after its graceful stop by default; faasd asked for the stop,
# so a plain exit 0 says it better.
set :server_settings, { raise_exception_on_sigterm: false }
# Started below, so that the lock is written by a hook on the running server.
set :run, false

get '/' do
  'Frank has entered the building'
end

get '/logout' do
  'Frank has left the building'
end

at_exit { File.delete(LOCK) if File.exist?(LOCK) }

Sinatra::Application.run! do |server|
  # Puma fires on_booted once the port accepts connections: not a moment earlier may the
  # lock say "ready".
  server.events.on_booted { File.write(LOCK, "#{Process.pid}\n") }
end
