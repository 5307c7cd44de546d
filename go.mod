module tradeunit

go 1.26.8
