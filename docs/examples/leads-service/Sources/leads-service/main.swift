import LeadsService

try await LeadsService.run()
