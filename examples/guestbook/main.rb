# guestbook: a Sinatra app whose state lives in MariaDB, so that faasd may start, stop and
# scale its replicas (down to zero) without losing an entry. faasd passes the port in
# PORT, the database in DB_* and its password as the secret guestbook-db-password, and
# routes requests here once /tmp/.lock exists.
require 'sinatra'
require 'mysql2'

LOCK = '/tmp/.lock'

set :bind, '127.0.0.1'
set :port, Integer(ENV.fetch('PORT', '8080'))
set :server, 'puma'
# Puma re-raises SIGTERM after its graceful stop by default; faasd asked for the stop,
# so a plain exit 0 says it better.
set :server_settings, { raise_exception_on_sigterm: false }
# Started below, so that the lock is written by a hook on the running server.
set :run, false
set :show_exceptions, false

# The one connection of this replica, used by Puma's threads in turn: a guestbook needs no
# pool. A connection the database dropped (it restarted, or timed it out) is opened again.
class Book
  GONE_AWAY = 2006 # found out before the statement was sent, so it is safe to send again

  def initialize(**opts)
    @opts = opts
    @lock = Mutex.new
    @client = nil
  end

  def use
    @lock.synchronize do
      retried = false
      begin
        @client ||= Mysql2::Client.new(**@opts)
        yield @client
      rescue Mysql2::Error => e
        @client&.close
        @client = nil
        raise if retried || e.error_number != GONE_AWAY
        retried = true
        retry
      end
    end
  end

  def entries
    use { |db| db.query('SELECT name, message, created_at FROM entries ORDER BY id DESC LIMIT 200').to_a }
  end

  def sign(name, message)
    use do |db|
      st = db.prepare('INSERT INTO entries (name, message) VALUES (?, ?)')
      st.execute(name, message)
      st.close
    end
  end

  def reset
    use { |db| db.query('DELETE FROM entries') }
  end

  # Every replica runs this at start; IF NOT EXISTS makes them agree.
  def migrate
    use do |db|
      db.query(<<~SQL)
        CREATE TABLE IF NOT EXISTS entries (
          id INT AUTO_INCREMENT PRIMARY KEY,
          name VARCHAR(100) NOT NULL,
          message VARCHAR(1000) NOT NULL,
          created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
        ) CHARACTER SET utf8mb4
      SQL
    end
  end
end

# Secrets are files: faasd mounts the function's at /var/openfaas/secrets, or names the
# directory in OPENFAAS_SECRETS_PATH where a replica gets no mount namespace of its own.
def secret(name)
  dir = ENV.fetch('OPENFAAS_SECRETS_PATH', '/var/openfaas/secrets')
  File.read(File.join(dir, name)).chomp
rescue SystemCallError => e
  warn "guestbook: secret #{name}: #{e.message} (list it in the function's secrets)"
  exit 1
end

BOOK = Book.new(
  host: ENV.fetch('DB_HOST', '127.0.0.1'),
  port: Integer(ENV.fetch('DB_PORT', '3306')),
  username: ENV.fetch('DB_USER', 'guestbook'),
  password: secret('guestbook-db-password'),
  database: ENV.fetch('DB_NAME', 'guestbook'),
  encoding: 'utf8mb4',
  connect_timeout: 5
)

helpers do
  def h(text)
    Rack::Utils.escape_html(text.to_s)
  end

  # A relative Location, resolved by the browser against the URL it posted to: the
  # redirect then works behind faasd's /function/guestbook/ prefix and on a host of its
  # own alike. (Sinatra's redirect would make it absolute from the path it saw.)
  def back_to_list
    response['Location'] = './'
    halt 303
  end
end

get '/' do
  @entries = BOOK.entries
  erb :index
end

post '/sign' do
  name = params['name'].to_s.strip
  message = params['message'].to_s.strip
  halt 400, "A name and a message, please.\n" if name.empty? || message.empty?
  BOOK.sign(name[0, 100], message[0, 1000])
  back_to_list
end

post '/reset' do
  BOOK.reset
  back_to_list
end

error Mysql2::Error do
  status 503
  "The guestbook's database is not available right now: #{env['sinatra.error'].message}\n"
end

# No table, no service: a replica that cannot reach the database exits, and faasd starts
# it again with backoff until it can.
begin
  BOOK.migrate
rescue Mysql2::Error => e
  warn "guestbook: database #{ENV.fetch('DB_HOST', '127.0.0.1')}:#{ENV.fetch('DB_PORT', '3306')}: #{e.message}"
  exit 1
end

at_exit { File.delete(LOCK) if File.exist?(LOCK) }

Sinatra::Application.run! do |server|
  # Puma fires on_booted once the port accepts connections.
  server.events.on_booted { File.write(LOCK, "#{Process.pid}\n") }
end
